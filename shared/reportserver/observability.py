"""The one place that creates the logger and metrics every function uses.

The domain and the sources log with the standard library (`logging.getLogger(__name__)`, so under
`reportserver.*`) and know nothing of Lambda. The Powertools Logger made here is the `reportserver`
logger itself, so their records reach its handler and come out as its JSON lines, with the keys the
request appended (correlation id, token name, report).

No Powertools Tracer here: it imports the X-Ray SDK and botocore at start (about 400 ms of cold
start measured on the API functions). The template's `Tracing: Active` still gives each invocation
its X-Ray segment; the export worker, where cold start matters less, may add a tracer of its own.
"""

from aws_lambda_powertools import Logger, Metrics

SERVICE = "reportserver"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="ReportServer", service=SERVICE)
