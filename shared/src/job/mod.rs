//! The pure core of an import job: the request, its plan, its progress, and who asks. Nothing
//! here performs I/O or knows an HTTP, Redis or Postgres type.

pub mod caller;
pub mod csv_request;
pub mod leads_json;
pub mod original_rows;
pub mod plan;
pub mod request;
pub mod status;
