"""Storage adapters: the only code that calls boto3. SDK errors become domain exceptions here."""
