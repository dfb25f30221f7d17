"""The driver-less audit behind :func:`policykit.distributed.distributed_audit` (private:
the public module is :mod:`policykit.distributed`)."""

from .pipeline import AuditSummary, file_source, run_files

__all__ = ["AuditSummary", "file_source", "run_files"]
