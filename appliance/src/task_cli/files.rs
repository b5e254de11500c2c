//! `taskstream export` and `taskstream import`: a user's tasks to and from a file, through a
//! running server's API or on the data directory (the same choice as `taskstream task`).

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use taskstream_engine::transfer::{Format, IMPORT_MAX_BYTES};

use super::{TargetArgs, open, zone_flag};

/// Options of `taskstream export`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Examples:
  taskstream export > tasks.json                       lossless: import it anywhere to get the same tasks
  taskstream export --format ics --output tasks.ics    for calendar and to-do apps
  taskstream export --format csv --url http://127.0.0.1:8080 --token tsk_…")]
pub struct ExportArgs {
    /// json (every field, lossless), csv (one task a row, every field) or ics (iCalendar
    /// VTODOs with DUE, RRULE, VALARM, PRIORITY, STATUS, CATEGORIES) [default: json, or the
    /// --output file's extension]
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Write to this file instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub target: TargetArgs,
}

/// Options of `taskstream import`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Every record is checked before anything is imported: one bad record and nothing is, with
each problem named by its line or record. A task whose id you already have is skipped, so
importing the same file twice creates nothing new; ids another user has get a new id of
their own (the file's links between tasks follow). Imported tasks get their events,
reminders and recurrence like tasks created any other way.

Todoist: export a project as CSV in Todoist (… → Export as template → CSV) and import it
with --format todoist. PRIORITY 1 (Todoist's p1, the highest) becomes high, 2 medium, 3
low, 4 (no priority) medium; @labels become tags; a section's name tags its tasks; comments
join the description; DATE is read like the quick-add box (\"every monday\", \"tomorrow 10am\");
sub-tasks (INDENT 2, deeper ones too) become subtasks of the task above them. The tasks go
into the project named like the file (Groceries.csv: Groceries), found by name or created;
--project NAME names another, --no-project keeps them out of any.

Projects and subtasks: JSON, CSV (columns project and subtask_of) and iCalendar
(X-TASKSTREAM-PROJECT, RELATED-TO;RELTYPE=PARENT) keep them; a project is found among yours
by name or created.

Examples:
  taskstream import tasks.json
  taskstream import --format todoist Groceries.csv
  curl -s -X POST 'http://127.0.0.1:8080/api/import?format=ics' -H \"Authorization: Bearer $TOKEN\" --data-binary @tasks.ics")]
pub struct ImportArgs {
    /// The file to import; `-` reads stdin
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// json, csv, ics or todoist [default: from the file's extension: .json, .csv, .ics]
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Put the tasks that name no project (all of a Todoist file's) into this project, found
    /// by name or created [default for todoist: the file's name without its extension]
    #[arg(long, value_name = "NAME", conflicts_with = "no_project")]
    pub project: Option<String>,

    /// Do not put a Todoist file's tasks into a project named like the file
    #[arg(long)]
    pub no_project: bool,

    #[command(flatten)]
    pub target: TargetArgs,
}

fn format_named(name: &str, exporting: bool) -> anyhow::Result<Format> {
    match Format::parse(name) {
        Some(format) if !exporting || format.exportable() => Ok(format),
        Some(_) => bail!("{name} is an import format only; export as json, csv or ics"),
        None if exporting => bail!("unknown format {name:?}: use json, csv or ics"),
        None => bail!("unknown format {name:?}: use json, csv, ics or todoist"),
    }
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let format = match (&args.format, &args.output) {
        (Some(name), _) => format_named(name, true)?,
        (None, Some(path)) => Format::of_file_name(&path.to_string_lossy()).unwrap_or(Format::Json),
        (None, None) => Format::Json,
    };
    let backend = open(&args.target).await?;
    let text = backend.export(format).await?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("exported to {} ({})", path.display(), format.as_str());
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let stdin = args.file.as_os_str() == "-";
    let format = match &args.format {
        Some(name) => format_named(name, false)?,
        None if stdin => bail!("--format is needed when reading stdin"),
        None => Format::of_file_name(&args.file.to_string_lossy()).with_context(|| {
            format!(
                "cannot tell the format of {} from its name: pass --format json|csv|ics|todoist",
                args.file.display()
            )
        })?,
    };
    let mut bytes = Vec::new();
    let limit = u64::try_from(IMPORT_MAX_BYTES).unwrap_or(u64::MAX) + 1;
    if stdin {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?
            .take(limit)
            .read_to_end(&mut bytes)?;
    }
    if bytes.len() > IMPORT_MAX_BYTES {
        bail!("the file is larger than {IMPORT_MAX_BYTES} bytes: split it");
    }
    let text = String::from_utf8(bytes).context("the file is not UTF-8 text")?;
    let backend = open(&args.target).await?;
    let zone = backend.zone(zone_flag(&args.target)?).await?;
    let project = match (&args.project, args.no_project) {
        (Some(name), _) => Some(name.clone()),
        (None, true) => None,
        // A Todoist export is one project, and Todoist names the file after it.
        (None, false) if format == Format::Todoist && !stdin => args
            .file
            .file_stem()
            .map(|stem| stem.to_string_lossy().trim().to_owned())
            .filter(|stem| !stem.is_empty()),
        (None, false) => None,
    };
    let report = backend
        .import(format, text, project.as_deref(), zone)
        .await?;
    println!(
        "imported {} tasks, skipped {} already there",
        report["created"], report["skipped"]
    );
    for warning in report["warnings"].as_array().into_iter().flatten() {
        println!("note: {}", warning.as_str().unwrap_or(""));
    }
    Ok(())
}
