//! The OpenAPI document, generated from the routes and types, and its interactive page. The
//! page's assets are compiled into the binary (utoipa-swagger-ui, `vendored`): it works offline.

use axum::Router;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "livescore",
        description = "Live football scores from replayed StatsBomb matches: REST, Server-Sent Events \
                       and WebSocket. Match data: StatsBomb Open Data."
    ),
    paths(
        crate::games,
        crate::game,
        crate::ready,
        healthz,
        crate::metrics,
        crate::sse::games,
        crate::sse::game,
        crate::ws::upgrade,
    ),
    components(schemas(
        livescore_wire::ClientRequest,
        livescore_wire::ServerFrame,
        livescore_wire::Kind,
        livescore_wire::Topic,
        livescore_wire::Cursor,
        livescore_wire::SnapshotReason,
        livescore_wire::join::Resumed,
        crate::presence::Watching,
        crate::GameLine,
        crate::sse::FeedEvent,
        crate::sse::MatchEvent,
        crate::sse::FeedSnapshot,
        crate::sse::FeedPresence,
        crate::sse::MatchPresence,
        crate::ErrorBody
    )),
    tags(
        (name = "games", description = "Games and their state"),
        (name = "live", description = "Live streams, with resume by cursor"),
        (name = "health", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// `/openapi.json` and the docs page at `/docs/`, describing the API's routes and those of
/// `also` (the producer's admin routes, when one process serves both: `livescore up`).
pub fn docs(also: Option<utoipa::openapi::OpenApi>) -> Router<crate::ShardApi> {
    let mut doc = ApiDoc::openapi();
    if let Some(also) = also {
        doc.merge(also);
    }
    Router::new().merge(docs_of(doc))
}

/// `/openapi.json` and `/docs/` for `doc`, on a router of any state (the producer's alone).
pub fn docs_of<S: Clone + Send + Sync + 'static>(doc: utoipa::openapi::OpenApi) -> Router<S> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
}

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "the process answers", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}
