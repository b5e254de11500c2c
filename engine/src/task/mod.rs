//! Tasks: the model, the rules for input, the list query, and the pure state transitions.

mod fields;
pub mod input;
pub mod model;
pub mod ops;
pub mod query;
pub mod window;

pub use input::{NewTask, TaskPatch};
pub use model::{Priority, RecurrenceFrom, RecurrenceTrigger, Task, TaskStatus, TaskView};
pub use ops::{Change, TaskOp};
pub use query::{ProjectFilter, SortField, SortOrder, StatusFilter, TaskQuery};
pub use window::DueWindow;
