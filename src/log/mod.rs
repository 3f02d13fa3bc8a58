//! Reading AWS WAF logs: where they are ([`input`]), how their bytes become lines ([`reader`]), and what
//! one record holds ([`record`]).

pub mod fast;
pub mod gunzip;
pub mod headers;
mod index;
pub mod input;
mod json;
pub mod packed;
pub mod reader;
pub mod record;
pub mod view;

pub use input::{InputFile, TimeRange, discover};
pub use reader::{ChunkReader, Malformed, RecordSink, parse_chunk};
pub use record::LogRecord;
pub use view::{Action, ScanRecord};
