//! This domain's part of the OpenAPI document (the bearer scheme comes from the auth part).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::create, crate::api::get, crate::api::update, crate::api::cancel,
        crate::api::list, crate::api::batch
    ),
    components(schemas(
        crate::model::NewEvent, crate::model::EventPatch, crate::model::EventView,
        crate::model::EventId, crate::model::Category,
        crate::model::Status, crate::api::EventPage, crate::api::BatchRequest,
        crate::api::BatchResponse
    )),
    tags((name = "events", description = "Create, read, change, cancel, list, search and batch-read events"))
)]
struct EventsDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    EventsDoc::openapi()
}
