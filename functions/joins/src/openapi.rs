//! This domain's part of the OpenAPI document.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(crate::api::join, crate::api::leave, crate::api::my_place, crate::api::attendees,
        crate::api::my_joins),
    components(schemas(
        seating::rules::JoinView, seating::rules::LeaveView, crate::api::AttendeeView,
        crate::api::AttendeePage, crate::api::MyJoin, crate::api::MyJoinPage,
        seating::State
    )),
    tags((name = "joins", description = "Join and leave events; waitlist, attendees, my joins"))
)]
struct JoinsDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    JoinsDoc::openapi()
}
