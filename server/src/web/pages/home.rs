//! `/`: where a signed-in user starts. Agents start at their queues; requesters at the portal,
//! where they raise and follow their tickets.

use axum::response::Response;

use crate::serve::tenants::Backend;
use crate::web::layout;
use crate::web::session::Signed;
use crate::web::WebResult;

/// `GET /`.
pub async fn home<B: Backend>(signed: Signed<B::Store>) -> WebResult<Response> {
    if signed.ctx.who.is_requester_only() {
        return Ok(layout::see_other("/portal"));
    }
    Ok(layout::see_other("/queues"))
}
