"""Prometheus metrics of one service process (prometheus_client, text exposition format).

Labels hold route templates (``/v1/jobs/{job_id}``), never concrete paths, so a metric can
never carry an identifier and the series count stays bounded.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: N811
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "ServiceMetrics"]


class ServiceMetrics:
    """Request counts and latencies, queue depth, model load time, job outcomes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "medsight_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "medsight_http_request_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "medsight_jobs_queued", "Jobs waiting or running", registry=self.registry
        )
        self.model_load = Gauge(
            "medsight_model_load_seconds",
            "Time to verify and load a model version",
            ["model", "version"],
            registry=self.registry,
        )
        self.jobs = Counter(
            "medsight_jobs_finished", "Jobs finished", ["outcome"], registry=self.registry
        )
        self.inference = Histogram(
            "medsight_inference_seconds",
            "Model inference time per input",
            ["task"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )

        self.dicom_received = Counter(
            "medsight_dicom_instances",
            "DICOM instances received, by outcome (stored, refused, error)",
            ["outcome"],
            registry=self.registry,
        )
        self.dicom_associations = Counter(
            "medsight_dicom_associations",
            "DICOM associations requested, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.dicom_deliveries = Counter(
            "medsight_dicom_deliveries",
            "Result deliveries to the PACS, by outcome (sent, retry, failed, skipped)",
            ["outcome"],
            registry=self.registry,
        )
        self.dicom_pending = Gauge(
            "medsight_dicom_deliveries_pending",
            "Result deliveries waiting to be sent or retried",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
