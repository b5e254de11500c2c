//! Carries out consumer effects against the store, through the same service as REST.

use crate::error::EngineError;
use crate::service::TaskService;

use super::Effect;

/// Applies effects; every effect is idempotent on its own (unique constraints), so applying one
/// twice after a crash changes nothing.
#[derive(Clone)]
pub struct EffectApplier {
    tasks: TaskService,
}

impl EffectApplier {
    pub fn new(tasks: TaskService) -> Self {
        Self { tasks }
    }

    pub async fn apply(&self, effect: Effect) -> Result<(), EngineError> {
        match effect {
            Effect::Audit(entry) => {
                self.tasks.store().record_audit(entry).await?;
            }
            Effect::EnsureNextOccurrence { task_id, user_id } => {
                match self.tasks.ensure_next_occurrence(&user_id, task_id).await {
                    // A task deleted (or never this user's) since the event: nothing to repair.
                    Ok(_) | Err(EngineError::NotFound | EngineError::Forbidden) => {}
                    Err(error) => return Err(error),
                }
            }
            Effect::Notify(notification) => {
                self.tasks.store().record_notification(notification).await?;
            }
        }
        Ok(())
    }
}
