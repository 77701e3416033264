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
        crate::ErrorBody
    )),
    tags(
        (name = "games", description = "Games and their state"),
        (name = "live", description = "Live streams, with resume by cursor"),
        (name = "health", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// `/openapi.json` and the docs page at `/docs/`.
pub fn docs() -> Router<crate::ShardApi> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
