//! Projects and subtasks in the web UI, over plain HTTP against the real binary (forms posted
//! with their CSRF token, no JavaScript): the projects sidebar, creating, renaming and deleting
//! a project, putting tasks in one, a project's list with its views, subtasks under their
//! parent with their progress, and every form's refusals (never a 500). One browser test walks
//! the main flow in chromium.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use taskstream_tests::browser::{Browser, browser_available};
use taskstream_tests::web::{WebClient, token_subject};
use taskstream_tests::{TestServer, User};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";

taskstream_tests::api_tests!(
    projects_are_created_renamed_and_deleted_with_forms,
    project_forms_refuse_bad_input_and_other_users_projects,
    tasks_go_in_projects_and_the_list_shows_one_project,
    subtasks_are_added_ticked_and_shown_under_their_parent,
    subtask_forms_refuse_bad_input,
);

/// A signed-up web client and the same user on the REST API (to check what the forms did).
async fn signed_up(srv: &TestServer) -> (WebClient, User) {
    let mut web = WebClient::new(srv).await;
    web.sign_up(EMAIL, PASSWORD).await;
    let sub = token_subject(web.session.as_deref().unwrap());
    (web, srv.user(&sub))
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn page(web: &WebClient, path: &str) -> String {
    let response = web.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.unwrap()
}

/// The titles of the task list (`class="title"` links) in a page.
fn titles(page: &str) -> Vec<String> {
    page.split("class=\"title\"")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest[start..].find('<')?;
            Some(rest[start..start + end].to_owned())
        })
        .collect()
}

/// `page` with its escaped ampersands plain, to compare URLs in attributes.
fn amps(page: &str) -> String {
    page.replace("&#38;", "&").replace("&amp;", "&")
}

/// The part of `page` from the first `from` on.
fn after<'a>(page: &'a str, from: &str) -> &'a str {
    let start = page.find(from).unwrap_or_else(|| panic!("{from} missing"));
    &page[start..]
}

async fn projects(user: &User) -> Vec<Value> {
    user.get("/api/projects")
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .clone()
}

/// Creates a project through the sidebar form and returns its id.
async fn create_project(web: &WebClient, user: &User, name: &str) -> String {
    let response = web.post("/projects", &[("name", name)]).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    projects(user)
        .await
        .iter()
        .find(|project| project["name"] == name)
        .map(|project| project["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("project {name} was not created"))
}

async fn links(user: &User, task: &str) -> Value {
    user.get(&format!("/api/tasks/{task}/links"))
        .await
        .expect(200)
        .clone()
}

/// Posts the full task form (create, or update when `task` is given).
async fn post_task_form(
    web: &WebClient,
    task: Option<&str>,
    title: &str,
    project: &str,
) -> reqwest::Response {
    let path = match task {
        Some(id) => format!("/tasks/{id}"),
        None => "/tasks".to_owned(),
    };
    web.post(
        &path,
        &[
            ("title", title),
            ("description", ""),
            ("priority", "medium"),
            ("status", "pending"),
            ("tags", ""),
            ("due_date", ""),
            ("reminder_offset_minutes", ""),
            ("repeat", ""),
            ("project_id", project),
        ],
    )
    .await
}

async fn projects_are_created_renamed_and_deleted_with_forms(srv: TestServer) {
    let (web, user) = signed_up(&srv).await;
    let home = page(&web, "/").await;
    assert!(home.contains("id=\"projects-heading\""), "the sidebar");
    assert!(
        home.contains("action=\"/projects\""),
        "the new project form"
    );

    // Create: the answer is the new (empty) project's list.
    let response = web.post("/projects", &[("name", "  Garden  ")]).await;
    assert_eq!(response.status(), 303);
    let to = location(&response);
    let all = projects(&user).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["name"], "Garden", "trimmed");
    let id = all[0]["id"].as_str().unwrap().to_owned();
    assert!(to.contains(&format!("project={id}")), "{to}");
    let shown = page(&web, &to).await;
    assert!(shown.contains("Created the project “Garden”."), "{shown}");
    assert!(shown.contains("<h1 id=\"project-title\">Garden</h1>"));
    assert!(shown.contains(&format!("data-project-id=\"{id}\"")));
    assert!(shown.contains(&format!("action=\"/projects/{id}/rename\"")));
    assert!(shown.contains(&format!("href=\"/projects/{id}/delete\"")));
    assert!(shown.contains("No tasks here"));

    // Rename.
    let response = web
        .post(&format!("/projects/{id}/rename"), &[("name", "Yard")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(projects(&user).await[0]["name"], "Yard");
    let shown = page(&web, &location(&response)).await;
    assert!(shown.contains("Renamed the project to “Yard”."));
    assert!(shown.contains("<h1 id=\"project-title\">Yard</h1>"));

    // Names are escaped wherever they are shown.
    let evil = "<script>alert(1)</script>";
    let response = web
        .post(&format!("/projects/{id}/rename"), &[("name", evil)])
        .await;
    assert_eq!(response.status(), 303);
    let task = user
        .post("/api/tasks", &json!({"title": "Mow", "project_id": id}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/?project={id}"),
        "/".to_owned(),
        format!("/tasks/{task}"),
        format!("/tasks/{task}/edit"),
        "/tasks/new".to_owned(),
        format!("/projects/{id}/delete"),
    ] {
        let shown = page(&web, &path).await;
        assert!(!shown.contains(evil), "{path} renders the name as markup");
        assert!(
            shown.contains("&lt;script&gt;") || shown.contains("&#60;script&#62;"),
            "{path} shows the name as text"
        );
    }
    web.post(&format!("/projects/{id}/rename"), &[("name", "Yard")])
        .await;

    // Delete asks first and says what happens to the task; the task stays, in no project.
    let confirm = page(&web, &format!("/projects/{id}/delete")).await;
    assert!(confirm.contains("Delete the project “Yard”?"), "{confirm}");
    assert!(confirm.contains("Its task is kept, in no project."));
    assert_eq!(projects(&user).await.len(), 1, "asking deletes nothing");
    let response = web.post(&format!("/projects/{id}/delete"), &[]).await;
    assert_eq!(response.status(), 303);
    let shown = page(&web, &location(&response)).await;
    assert!(shown.contains("Deleted the project “Yard”; its tasks are kept."));
    assert!(projects(&user).await.is_empty());
    assert_eq!(links(&user, &task).await["project_id"], Value::Null);
    assert!(titles(&shown).contains(&"Mow".to_owned()));
    assert_eq!(
        web.get(&format!("/projects/{id}/delete")).await.status(),
        404,
        "a deleted project's pages are gone"
    );

    // Without the CSRF token nothing happens.
    let response = web.post_raw("/projects", &[("name", "Sneaky")]).await;
    assert_eq!(response.status(), 403);
    assert!(projects(&user).await.is_empty());
}

async fn project_forms_refuse_bad_input_and_other_users_projects(srv: TestServer) {
    let (web, user) = signed_up(&srv).await;
    let id = create_project(&web, &user, "Work").await;

    // Empty, blank, too long, taken (ignoring case): a clear 422 page, nothing created.
    for (name, why) in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (&"x".repeat(101), "at most 100 characters"),
        ("WORK", "already exists"),
    ] {
        let response = web.post("/projects", &[("name", name)]).await;
        assert_eq!(response.status(), 422, "{name:?}");
        let text = response.text().await.unwrap();
        assert!(text.contains(why), "{name:?}: {text}");
        assert!(!text.contains("Value error"), "{text}");
    }
    let response = web.post("/projects", &[]).await;
    assert_eq!(response.status(), 422, "no name field at all");
    assert_eq!(projects(&user).await.len(), 1);
    // 100 characters are fine.
    create_project(&web, &user, &"y".repeat(100)).await;

    // Renaming to an empty or taken name is refused and changes nothing.
    create_project(&web, &user, "Home").await;
    for (name, why) in [("", "must not be empty"), ("home", "already exists")] {
        let response = web
            .post(&format!("/projects/{id}/rename"), &[("name", name)])
            .await;
        assert_eq!(response.status(), 422, "{name:?}");
        assert!(response.text().await.unwrap().contains(why));
    }
    assert!(
        projects(&user)
            .await
            .iter()
            .any(|project| project["id"] == id && project["name"] == "Work")
    );

    // Another user's project: not found, whichever form, and it stays as it was.
    let bob = srv.user("bob");
    let theirs = bob
        .post("/api/projects", &json!({"name": "Bob's"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bobs_task = bob
        .post(
            "/api/tasks",
            &json!({"title": "Bob's secret", "project_id": theirs}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = web.get(&format!("/projects/{theirs}/delete")).await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Not found"));
    for (path, fields) in [
        (format!("/projects/{theirs}/rename"), vec![("name", "Mine")]),
        (format!("/projects/{theirs}/delete"), vec![]),
        (
            "/projects/not-a-uuid/rename".to_owned(),
            vec![("name", "x")],
        ),
        ("/projects/not-a-uuid/delete".to_owned(), vec![]),
    ] {
        let response = web.post(&path, &fields).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(
        bob.get(&format!("/api/projects/{theirs}"))
            .await
            .expect(200)["name"],
        "Bob's"
    );

    // Their project in the list's filter shows none of their tasks, and says so.
    for filter in [theirs.as_str(), "not-a-project"] {
        let shown = page(&web, &format!("/?project={filter}")).await;
        assert!(shown.contains("That project does not exist"), "{filter}");
        assert!(!shown.contains("Bob&#39;s secret") && !shown.contains("Bob's secret"));
    }
    assert_eq!(links(&bob, &bobs_task).await["project_id"], theirs.as_str());
}

async fn tasks_go_in_projects_and_the_list_shows_one_project(srv: TestServer) {
    let (web, user) = signed_up(&srv).await;
    let house = create_project(&web, &user, "House").await;
    let office = create_project(&web, &user, "Office").await;

    // The new task form offers the projects, and ?project= chooses one.
    let form = page(&web, &format!("/tasks/new?project={house}")).await;
    assert!(form.contains("name=\"project_id\""));
    assert!(form.contains(&format!(
        "<option value=\"{house}\" selected>House</option>"
    )));
    assert!(form.contains(&format!("<option value=\"{office}\" >Office</option>")));

    // The full form puts the task in the chosen project and shows that project's list.
    let response = post_task_form(&web, None, "Fix the roof", &house).await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).contains(&format!("project={house}")));
    let roof = user.list("search=roof").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(links(&user, &roof).await["project_id"], house.as_str());

    // Quick add on a project's page adds to it.
    let shown = page(&web, &format!("/?project={office}")).await;
    assert!(shown.contains(&format!(
        "<input type=\"hidden\" name=\"project\" value=\"{office}\">"
    )));
    let response = web
        .post(
            "/tasks/quick",
            &[("text", "Print the report"), ("project", &office)],
        )
        .await;
    assert_eq!(response.status(), 303);
    let report = user.list("search=report").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(links(&user, &report).await["project_id"], office.as_str());

    // Overdue (so in Today) in the house, and one in no project.
    let overdue = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    user.post(
        "/api/tasks",
        &json!({"title": "Pay the plumber", "project_id": house, "due_date": overdue}),
    )
    .await
    .expect(201);
    user.post("/api/tasks", &json!({"title": "Loose end"}))
        .await
        .expect(201);

    let mut list = titles(&page(&web, &format!("/?project={house}")).await);
    list.sort();
    assert_eq!(list, ["Fix the roof", "Pay the plumber"]);
    let mut list = titles(&page(&web, &format!("/tasks?project={house}")).await);
    list.sort();
    assert_eq!(
        list,
        ["Fix the roof", "Pay the plumber"],
        "/tasks is the list too"
    );
    assert_eq!(titles(&page(&web, "/?project=none").await), ["Loose end"]);
    assert_eq!(titles(&page(&web, "/").await).len(), 4, "all tasks");

    // The views and status tabs stay in the project.
    let shown = amps(&page(&web, &format!("/?project={house}")).await);
    assert!(
        shown.contains(&format!("view=today&project={house}")),
        "{shown}"
    );
    assert!(shown.contains(&format!("status=completed&project={house}")));
    assert_eq!(
        titles(&page(&web, &format!("/?project={house}&view=today")).await),
        ["Pay the plumber"]
    );
    assert!(titles(&page(&web, &format!("/?project={office}&view=today")).await).is_empty());
    // …and the sidebar keeps the view when it switches project.
    let today = amps(&page(&web, &format!("/?project={house}&view=today")).await);
    assert!(today.contains(&format!(
        "href=\"/?status=active&view=today&project={office}\""
    )));

    // Completing from a project's list comes back to it.
    let response = web
        .post(
            &format!("/tasks/{report}/complete"),
            &[("project", &office)],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).ends_with(&format!("&project={office}")));

    // The edit form shows the task's project and moves it.
    let edit = page(&web, &format!("/tasks/{roof}/edit")).await;
    assert!(edit.contains(&format!(
        "<option value=\"{house}\" selected>House</option>"
    )));
    let response = post_task_form(&web, Some(&roof), "Fix the roof", &office).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    assert_eq!(links(&user, &roof).await["project_id"], office.as_str());
    let response = post_task_form(&web, Some(&roof), "Fix the roof", "").await;
    assert_eq!(response.status(), 303);
    assert_eq!(links(&user, &roof).await["project_id"], Value::Null);

    // The task page's move form.
    let detail = page(&web, &format!("/tasks/{roof}")).await;
    assert!(detail.contains(&format!("action=\"/tasks/{roof}/project\"")));
    let response = web
        .post(&format!("/tasks/{roof}/project"), &[("project_id", &house)])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(links(&user, &roof).await["project_id"], house.as_str());
    let detail = page(&web, &location(&response)).await;
    assert!(detail.contains(&format!("<a href=\"/?project={house}\">House</a>")));

    // Bad project ids: the form comes back saying why, nothing is created or moved.
    let bob = srv.user("bob");
    let theirs = bob
        .post("/api/projects", &json!({"name": "Bob's"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (project, why) in [
        ("garden", "choose one of your projects"),
        (theirs.as_str(), "that project does not exist"),
    ] {
        let response = post_task_form(&web, None, "Stray", project).await;
        assert_eq!(response.status(), 422, "{project}");
        let text = response.text().await.unwrap();
        assert!(text.contains(why), "{project}: {text}");
        assert!(text.contains("value=\"Stray\""), "what was typed is kept");
        let response = post_task_form(&web, Some(&roof), "Renamed roof", project).await;
        assert_eq!(response.status(), 422, "{project}");
    }
    assert!(user.list("search=stray").await.is_empty());
    assert_eq!(links(&user, &roof).await["project_id"], house.as_str());
    assert!(
        user.list("search=renamed").await.is_empty(),
        "a refused move saves nothing"
    );
    for project in ["garden", theirs.as_str()] {
        let response = web
            .post(
                &format!("/tasks/{roof}/project"),
                &[("project_id", project)],
            )
            .await;
        assert!(
            [404, 422].contains(&response.status().as_u16()),
            "{project}: {}",
            response.status()
        );
        let response = web
            .post("/tasks/quick", &[("text", "Stray"), ("project", project)])
            .await;
        assert!(
            [404, 422].contains(&response.status().as_u16()),
            "{project}: {}",
            response.status()
        );
    }
    assert!(user.list("search=stray").await.is_empty());
    assert_eq!(links(&user, &roof).await["project_id"], house.as_str());
    // Another user's task cannot be moved into my project.
    let bobs_task = bob
        .post("/api/tasks", &json!({"title": "Bob's"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = web
        .post(
            &format!("/tasks/{bobs_task}/project"),
            &[("project_id", &house)],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(links(&bob, &bobs_task).await["project_id"], Value::Null);
}

async fn subtasks_are_added_ticked_and_shown_under_their_parent(srv: TestServer) {
    let (web, user) = signed_up(&srv).await;
    let house = create_project(&web, &user, "House").await;
    let response = post_task_form(&web, None, "Paint the hall", &house).await;
    assert_eq!(response.status(), 303);
    let parent = user.list("search=hall").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let detail = page(&web, &format!("/tasks/{parent}")).await;
    assert!(detail.contains("id=\"subtasks\""));
    assert!(detail.contains("No subtasks yet."));
    assert!(detail.contains(&format!("action=\"/tasks/{parent}/subtasks\"")));

    // Add two: each line is read like the quick add.
    for text in ["Buy paint #shop", "Sand the walls"] {
        let response = web
            .post(&format!("/tasks/{parent}/subtasks"), &[("text", text)])
            .await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        assert_eq!(location(&response), format!("/tasks/{parent}#subtasks"));
    }
    let subtasks = user
        .get(&format!("/api/tasks/{parent}/subtasks"))
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(subtasks.len(), 2);
    assert_eq!(subtasks[0]["title"], "Buy paint");
    assert_eq!(subtasks[0]["tags"], json!(["shop"]));
    let paint = subtasks[0]["id"].as_str().unwrap().to_owned();
    let sand = subtasks[1]["id"].as_str().unwrap().to_owned();
    let link = links(&user, &paint).await;
    assert_eq!(link["subtask_of"], parent.as_str());
    assert_eq!(
        link["project_id"],
        house.as_str(),
        "in the parent's project"
    );

    let detail = page(&web, &format!("/tasks/{parent}")).await;
    assert!(detail.contains("<span class=\"progress\" title=\"Subtasks done\">0/2</span>"));
    let section = after(&detail, "id=\"subtasks\"");
    assert_eq!(titles(section), ["Buy paint", "Sand the walls"]);
    assert_eq!(section.matches("aria-checked=\"false\"").count(), 2);

    // Tick one: back on the parent's page, 1/2.
    let response = web
        .post(
            &format!("/tasks/{paint}/complete"),
            &[("back", &format!("/tasks/{parent}"))],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), format!("/tasks/{parent}#subtasks"));
    let detail = page(&web, &format!("/tasks/{parent}")).await;
    assert!(detail.contains(">1/2</span>"), "{detail}");
    assert_eq!(
        after(&detail, "id=\"subtasks\"")
            .matches("aria-checked=\"true\"")
            .count(),
        1
    );
    assert_eq!(
        user.get(&format!("/api/tasks/{paint}")).await.expect(200)["status"],
        "completed"
    );

    // The list: the open subtask indented under its parent, the parent with its progress.
    let list = page(&web, &format!("/?project={house}")).await;
    let parent_row = after(&list, &format!("id=\"task-{parent}\""));
    let nested = after(parent_row, "<ul class=\"subtasks\"");
    assert!(nested.contains(&format!("id=\"task-{sand}\"")), "{list}");
    assert!(parent_row.contains("☑ 1/2"));
    assert!(
        !list.contains("Buy paint"),
        "completed subtasks hide like any completed task"
    );
    // All statuses: both subtasks under the parent, in order.
    let list = page(&web, &format!("/?project={house}&status=all")).await;
    let nested = after(&list, "<ul class=\"subtasks\"");
    assert_eq!(&titles(nested)[..2], ["Buy paint", "Sand the walls"]);
    assert_eq!(titles(&list).len(), 3, "each task once");
    // A subtask found without its parent says whose it is.
    let found = page(&web, "/?search=sand").await;
    assert_eq!(titles(&found), ["Sand the walls"]);
    assert!(found.contains(&format!(
        "subtask of <a href=\"/tasks/{parent}\">Paint the hall</a>"
    )));

    // Untick: back to 0/2.
    let response = web
        .post(
            &format!("/tasks/{paint}/reopen"),
            &[("back", &format!("/tasks/{parent}"))],
        )
        .await;
    assert_eq!(response.status(), 303);
    let detail = page(&web, &format!("/tasks/{parent}")).await;
    assert!(detail.contains(">0/2</span>"));
    // `back` only ever leads to a task page of this site.
    let response = web
        .post(
            &format!("/tasks/{paint}/complete"),
            &[("back", "https://evil.example/tasks/x")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/?done="));

    // A subtask's own page names its parent and offers no subtasks or project choice.
    let detail = page(&web, &format!("/tasks/{sand}")).await;
    assert!(detail.contains(&format!("<a href=\"/tasks/{parent}\">Paint the hall</a>")));
    assert!(!detail.contains("id=\"subtasks\""));
    assert!(!detail.contains("/project\""));
    let edit = page(&web, &format!("/tasks/{sand}/edit")).await;
    assert!(!edit.contains("name=\"project_id\""));
    assert!(edit.contains("A subtask is in its parent"));
    let response = web
        .post(
            &format!("/tasks/{sand}"),
            &[
                ("title", "Sand all walls"),
                ("priority", "high"),
                ("status", "pending"),
                ("is_subtask", "1"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let link = links(&user, &sand).await;
    assert_eq!(
        link["project_id"],
        house.as_str(),
        "still in the parent's project"
    );
    assert_eq!(link["subtask_of"], parent.as_str());

    // Moving the parent takes its subtasks along.
    let response = web
        .post(&format!("/tasks/{parent}/project"), &[("project_id", "")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(links(&user, &sand).await["project_id"], Value::Null);

    // Deleting the parent says its subtasks go too, and they do.
    let confirm = page(&web, &format!("/tasks/{parent}/delete")).await;
    assert!(confirm.contains("and its 2 subtasks"), "{confirm}");
    let response = web.post(&format!("/tasks/{parent}/delete"), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(user.get(&format!("/api/tasks/{sand}")).await.status, 404);
}

async fn subtask_forms_refuse_bad_input(srv: TestServer) {
    let (web, user) = signed_up(&srv).await;
    let parent = user
        .post("/api/tasks", &json!({"title": "Parent"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = user
        .post(
            &format!("/api/tasks/{parent}/subtasks"),
            &json!({"title": "Child"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let count = |user: User, parent: String| async move {
        user.get(&format!("/api/tasks/{parent}/subtasks"))
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .len()
    };

    for (text, why) in [
        ("", "Type the subtask first"),
        ("   ", "Type the subtask first"),
        (&"t".repeat(300), "255"),
    ] {
        let response = web
            .post(&format!("/tasks/{parent}/subtasks"), &[("text", text)])
            .await;
        assert_eq!(response.status(), 422, "{text:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains(why), "{text:?}: {page}");
    }
    // One level only.
    let response = web
        .post(
            &format!("/tasks/{child}/subtasks"),
            &[("text", "Grandchild")],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("cannot have subtasks")
    );
    // Another user's task, a missing one, a malformed id: not found.
    let bobs = srv
        .user("bob")
        .post("/api/tasks", &json!({"title": "Bob's"}))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for target in [
        bobs.as_str(),
        "0191d1a4-0000-7000-8000-000000000000",
        "nope",
    ] {
        let response = web
            .post(
                &format!("/tasks/{target}/subtasks"),
                &[("text", "Mine now")],
            )
            .await;
        assert_eq!(response.status(), 404, "{target}");
    }
    assert_eq!(count(srv.user("bob"), bobs).await, 0);
    assert_eq!(count(user.clone(), parent.clone()).await, 1);
    assert_eq!(count(user, child).await, 0);
    // Without the CSRF token: refused.
    let response = web
        .post_raw(&format!("/tasks/{parent}/subtasks"), &[("text", "Sneaky")])
        .await;
    assert_eq!(response.status(), 403);
}

/// The main flow in chromium: create a project, add a task to it, add a subtask, tick it, see
/// "1/1" on the task and in the project's list.
#[tokio::test]
async fn a_person_plans_a_project_with_subtasks_in_the_browser() {
    if !browser_available("a_person_plans_a_project_with_subtasks_in_the_browser") {
        return;
    }
    let srv = TestServer::start().await;
    let browser = Browser::start(1280, 900).await;
    browser.goto(&srv.url("/")).await;
    browser.wait_css("#password-again").await;
    browser.fill("#email", "grace@example.com").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password-again", PASSWORD).await;
    browser.click("button[type=submit]").await;
    browser.wait_css("#quick-add").await;

    // A project from the sidebar: its (empty) list opens.
    browser.fill("#new-project", "Garden").await;
    browser.click(".new-project button[type=submit]").await;
    browser.wait_css("#project-title").await;
    browser.wait_text("Created the project “Garden”.", 10).await;

    // A task added on the project's page lands in it.
    browser.fill("#quick-add", "Plant tulips").await;
    browser.click(".quick button[type=submit]").await;
    browser.wait_text("Added “Plant tulips”", 10).await;
    assert!(browser.path().await.contains("project="));
    browser.click("#task-list a.title").await;
    browser.wait_css("#subtask-text").await;
    let project = browser.css("dd.project").await.text().await.unwrap();
    assert_eq!(project, "Garden");

    // A subtask, ticked: 1/1.
    browser.fill("#subtask-text", "Buy bulbs").await;
    browser.click(".add-subtask button[type=submit]").await;
    browser
        .wait_css(".subtask-list .tick[aria-checked=false]")
        .await;
    browser.wait_text("0/1", 10).await;
    browser.click(".subtask-list .tick").await;
    browser
        .wait_css(".subtask-list .tick[aria-checked=true]")
        .await;
    browser.wait_text("1/1", 10).await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    browser.screenshot(&shots, "task-subtasks").await;

    // The project's list shows the progress on the task.
    browser.click("dd.project a").await;
    browser.wait_css("#project-title").await;
    browser.wait_text("1/1", 10).await;
    let shot = browser.screenshot(&shots, "project-list").await;
    eprintln!("screenshot: {}", shot.display());
    browser.close().await;
}
