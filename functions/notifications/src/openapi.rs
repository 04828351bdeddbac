//! This domain's part of the OpenAPI document.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(crate::api::list, crate::api::mark_read),
    components(schemas(
        crate::api::Notification, crate::api::NotificationPage, crate::api::MarkRead,
        crate::api::ReadMark
    )),
    tags((name = "notifications", description = "My inbox: joins, waitlist, promotions, event changes and cancellations"))
)]
struct NotificationsDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    NotificationsDoc::openapi()
}
