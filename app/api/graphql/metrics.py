"""GraphQL operations counted and timed (``kehu_graphql_operations_total``,
``kehu_graphql_operation_duration_seconds``), on both paths: POST on Kehu's executor calls
``observe_operation``; GET runs on strawberry, where ``GraphQLMetrics`` does the same."""

import time
from collections.abc import Iterator

from graphql import DocumentNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from app.core import metrics


def sole_operation_name(document: DocumentNode | None) -> str | None:
    """The name of the document's only operation (which runs without ``operationName``)."""
    if document is None:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) == 1 and operations[0].name is not None:
        return operations[0].name.value
    return None


def observe_operation(name: str | None, failed: bool, seconds: float) -> None:
    label = metrics.graphql_operation_label(name)
    metrics.GRAPHQL_OPERATIONS.labels(label, "error" if failed else "ok").inc()
    metrics.GRAPHQL_SECONDS.labels(label).observe(seconds)


class GraphQLMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        failed = bool(context.pre_execution_errors) or bool(result is not None and result.errors)
        name = context.operation_name or sole_operation_name(context.graphql_document)
        observe_operation(name, failed, time.perf_counter() - started)
