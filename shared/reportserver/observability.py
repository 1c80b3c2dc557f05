"""The one place that creates the logger, tracer and metrics every function uses."""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "reportserver"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="ReportServer", service=SERVICE)
