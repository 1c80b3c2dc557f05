"""The one place that creates the logger and metrics every function uses.

No Powertools Tracer here: it imports the X-Ray SDK and botocore at start (about 400 ms of cold
start measured on the API functions). The template's `Tracing: Active` still gives each invocation
its X-Ray segment; the export worker, where cold start matters less, may add a tracer of its own.
"""

from aws_lambda_powertools import Logger, Metrics

SERVICE = "reportserver"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="ReportServer", service=SERVICE)
