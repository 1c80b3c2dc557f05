"""HTTP edges shared by the API functions: error mapping and response shapes."""
