//! The [`crate::ports::SettingsStore`] contract.

use super::*;

/// Every check of the [`crate::ports::SettingsStore`] contract.
pub async fn settings_store_suite<S: crate::ports::SettingsStore + ?Sized>(store: &S) {
    use crate::settings::UserSettings;

    assert_eq!(
        store.settings("settings-nobody").await.expect("read"),
        UserSettings::default(),
        "defaults until saved"
    );
    let tokyo = UserSettings {
        time_zone: chrono_tz::Asia::Tokyo,
        daily_digest: true,
        digest_hour: 6,
    };
    store
        .save_settings("settings-ann", tokyo, now())
        .await
        .expect("save");
    assert_eq!(store.settings("settings-ann").await.expect("read"), tokyo);
    let changed = UserSettings {
        daily_digest: false,
        ..tokyo
    };
    store
        .save_settings("settings-ann", changed, now())
        .await
        .expect("overwrite");
    assert_eq!(store.settings("settings-ann").await.expect("read"), changed);
    store
        .save_settings("settings-bo", tokyo, now())
        .await
        .expect("save");
    let subscribers = store.digest_subscribers().await.expect("subscribers");
    let names: Vec<&str> = subscribers.iter().map(|(user, _)| user.as_str()).collect();
    assert!(names.contains(&"settings-bo"), "opted in: {names:?}");
    assert!(
        !names.contains(&"settings-ann"),
        "opted out again: {names:?}"
    );
}
