//! The built-in tool and retrieval actions.

use futures::future::BoxFuture;
use weir_engine::{Durable, SpanEnd, SpanKind};

use crate::action::{ActionError, Handler};
use crate::context::Context;
use crate::event::Event;
use crate::event::builtin::{RetrievalRequestEvent, RetrievalResponseEvent, ToolRequestEvent, ToolResponseEvent};
use crate::spans;

/// Runs the calls of a [`ToolRequestEvent`] concurrently and answers a [`ToolResponseEvent`].
#[derive(Debug)]
pub(crate) struct ToolAction;

impl Handler for ToolAction {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let request: ToolRequestEvent = event.decode()?;
            let results = futures::future::join_all(request.calls.iter().map(|call| ctx.call_tool(call))).await;
            let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            ctx.send(ToolResponseEvent { request_id: event.id.clone(), results })?;
            Ok(())
        })
    }
}

/// Searches a vector store for a [`RetrievalRequestEvent`], durably, and answers a
/// [`RetrievalResponseEvent`].
#[derive(Debug)]
pub(crate) struct RetrievalAction;

impl Handler for RetrievalAction {
    fn handle<'a>(&'a self, event: &'a Event, ctx: &'a mut Context<'a>) -> BoxFuture<'a, Result<(), ActionError>> {
        Box::pin(async move {
            let request: RetrievalRequestEvent = event.decode()?;
            let store = ctx.resources().vector_store(&request.store)?.clone();
            let query = crate::retrieval::query_of(&request.query, request.max_results, &request.filter);
            let search = store.search(&query);
            let span = ctx.trace().start(ctx.span(), SpanKind::Retrieval, &request.store);
            let result = ctx.durable(&format!("retrieval:{}", request.store), search).await;
            let (end, found) = match &result {
                Ok(documents) => (
                    SpanEnd::ok().attribute("weir.retrieval.count", documents.len()),
                    serde_json::to_value(documents).ok(),
                ),
                Err(error) => (SpanEnd::failed(error), None),
            };
            ctx.trace().end(span, spans::retrieval(end, ctx.settings(), &request.query, found));
            let documents = result?;
            let response = RetrievalResponseEvent { request_id: event.id.clone(), query: request.query, documents };
            ctx.send(response)?;
            Ok(())
        })
    }
}
