//! The corpus: every phrasing the offline assistant promises to handle, with the exact plan
//! it must produce — tool names and argument JSON, or the kind of direct answer — against a
//! fixed "now" (Friday 27 November 2026, 10:00 UTC), a fixed task list and a fixed last list
//! (see [`super::fixture`]). Part of the table reads in Europe/Berlin (UTC+1 in winter: "5pm"
//! is 16:00Z), the rest in UTC.
//!
//! The test fails on any mismatch, naming the message, what was expected and what came out,
//! and prints the accuracy per intent (it must be 100%). `T3` in an expected argument stands
//! for fixture task 3's id.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde_json::Value;

use super::fixture::{Before, actions, context, fixture_last_list, fixture_tasks, id};
use super::{AnswerKind, Plan, plan};
use crate::assistant::ToolCall;
use Before::{Added, Completed, Deleted, Failed, Fresh, Listed, Updated};
use Kind::{Clarify, Help, NotFound, NotUnderstood, NothingToDo, SmallTalk};

const B: &str = "Europe/Berlin";
const U: &str = "UTC";

/// The kind of a direct answer.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Help,
    SmallTalk,
    /// The candidates, by fixture number, in order.
    Clarify(&'static [u128]),
    NotUnderstood,
    NotFound,
    NothingToDo,
}

/// What a message must produce.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Calls(&'static [(&'static str, &'static str)]),
    Answer(Kind),
}

/// One row of the corpus.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub zone: &'static str,
    pub before: Before,
    pub say: &'static str,
    /// The intent the user meant, for the accuracy split.
    pub intent: &'static str,
    pub expect: Expect,
}

const fn case(
    zone: &'static str,
    before: Before,
    say: &'static str,
    intent: &'static str,
    expect: Expect,
) -> Case {
    Case {
        zone,
        before,
        say,
        intent,
        expect,
    }
}

const fn calls(calls: &'static [(&'static str, &'static str)]) -> Expect {
    Expect::Calls(calls)
}

const fn answer(kind: Kind) -> Expect {
    Expect::Answer(kind)
}

#[rustfmt::skip]
pub const CASES: &[Case] = &[
    case(B, Fresh, "add buy milk tomorrow at 5pm #shopping !high", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T16:00:00Z","priority":"high","tags":["shopping"],"title":"buy milk"}"#)])),
    case(B, Fresh, "remind me to pay rent every month on the 1st at 9", "add", calls(&[("add_task", r#"{"due_date":"2026-12-01T08:00:00Z","recurrence_rule":"MONTHLY","reminder_offset_minutes":1,"title":"pay rent"}"#)])),
    case(B, Fresh, "buy groceries", "add", calls(&[("add_task", r#"{"title":"buy groceries"}"#)])),
    case(B, Fresh, "create a task call mom next friday", "add", calls(&[("add_task", r#"{"due_date":"2026-12-04T08:00:00Z","title":"call mom"}"#)])),
    case(B, Fresh, "Create a high priority task to finish the report by Friday", "add", calls(&[("add_task", r#"{"due_date":"2026-12-04T08:00:00Z","priority":"high","title":"finish the report"}"#)])),
    case(U, Fresh, "Add a task called Review PR with description check the tests", "add", calls(&[("add_task", r#"{"description":"check the tests","title":"Review PR"}"#)])),
    case(U, Fresh, "add a new todo named Plan offsite, notes: book a venue first", "add", calls(&[("add_task", r#"{"description":"book a venue first","title":"Plan offsite"}"#)])),
    case(U, Fresh, "Add a task to buy groceries tomorrow", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"buy groceries"}"#)])),
    case(U, Fresh, "create a reminder to call the bank at 4pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T16:00:00Z","reminder_offset_minutes":1,"title":"call the bank"}"#)])),
    case(U, Fresh, "create an urgent task: renew the TLS certificate", "add", calls(&[("add_task", r#"{"priority":"high","title":"renew the TLS certificate"}"#)])),
    case(B, Fresh, "urgent: fix the server", "add", calls(&[("add_task", r#"{"priority":"high","title":"fix the server"}"#)])),
    case(B, Fresh, "I need to finish the report by Dec 24", "add", calls(&[("add_task", r#"{"due_date":"2026-12-24T08:00:00Z","title":"finish the report"}"#)])),
    case(B, Fresh, "add call the plumber tonight", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T19:00:00Z","title":"call the plumber"}"#)])),
    case(B, Fresh, "add submit taxes this evening", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T17:00:00Z","title":"submit taxes"}"#)])),
    case(B, Fresh, "add stretch in the morning", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","title":"stretch"}"#)])),
    case(B, Fresh, "add lunch with Anna at noon", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T11:00:00Z","title":"lunch with Anna"}"#)])),
    case(B, Fresh, "add take out the trash at midnight", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T22:59:00Z","title":"take out the trash"}"#)])),
    case(B, Fresh, "add pick up kids at 5:30pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T16:30:00Z","title":"pick up kids"}"#)])),
    case(B, Fresh, "add standup at 17:30", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T16:30:00Z","title":"standup"}"#)])),
    case(B, Fresh, "add book flights in 3 days", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T08:00:00Z","title":"book flights"}"#)])),
    case(B, Fresh, "add check the oven in 2 hours", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T12:00:00Z","title":"check the oven"}"#)])),
    case(B, Fresh, "add move the car in 30 minutes", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T10:30:00Z","title":"move the car"}"#)])),
    case(B, Fresh, "add send the card on Dec 24", "add", calls(&[("add_task", r#"{"due_date":"2026-12-24T08:00:00Z","title":"send the card"}"#)])),
    case(B, Fresh, "add buy presents December 24th", "add", calls(&[("add_task", r#"{"due_date":"2026-12-24T08:00:00Z","title":"buy presents"}"#)])),
    case(B, Fresh, "add renew insurance 2026-12-24", "add", calls(&[("add_task", r#"{"due_date":"2026-12-24T08:00:00Z","title":"renew insurance"}"#)])),
    case(B, Fresh, "add finish slides by the end of the month", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T08:00:00Z","title":"finish slides"}"#)])),
    case(B, Fresh, "add plan the sprint next week", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T08:00:00Z","title":"plan the sprint"}"#)])),
    case(B, Fresh, "add visit grandma this weekend", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","title":"visit grandma"}"#)])),
    case(B, Fresh, "add water the garden every day", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","recurrence_rule":"DAILY","title":"water the garden"}"#)])),
    case(B, Fresh, "add team sync every 2 weeks", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;INTERVAL=2","title":"team sync"}"#)])),
    case(B, Fresh, "add take vitamins every 3 days", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","recurrence_rule":"INTERVAL:3","title":"take vitamins"}"#)])),
    case(B, Fresh, "add standup every weekday at 9:30", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T08:30:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR","title":"standup"}"#)])),
    case(B, Fresh, "add gym every monday and thursday at 7pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T18:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=MO,TH","title":"gym"}"#)])),
    case(B, Fresh, "add pay the phone bill every month on the 15th", "add", calls(&[("add_task", r#"{"due_date":"2026-12-15T08:00:00Z","recurrence_rule":"MONTHLY","title":"pay the phone bill"}"#)])),
    case(B, Fresh, "add check smoke alarms every year", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","recurrence_rule":"YEARLY","title":"check smoke alarms"}"#)])),
    case(B, Fresh, "add dentist appointment friday at 3pm, remind me 30 minutes before", "add", calls(&[("add_task", r#"{"due_date":"2026-12-04T14:00:00Z","reminder_offset_minutes":30,"title":"dentist appointment"}"#)])),
    case(B, Fresh, "add flight to Rome tomorrow at 6am with a reminder 2 hours before", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T05:00:00Z","reminder_offset_minutes":120,"title":"flight to Rome"}"#)])),
    case(B, Fresh, "remind me to call mom tomorrow at 5pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T16:00:00Z","reminder_offset_minutes":1,"title":"call mom"}"#)])),
    case(B, Fresh, "remind me to stretch", "add", calls(&[("add_task", r#"{"title":"stretch"}"#)])),
    case(B, Fresh, "add read a book low", "add", calls(&[("add_task", r#"{"priority":"low","title":"read a book"}"#)])),
    case(B, Fresh, "add clean the car low priority", "add", calls(&[("add_task", r#"{"priority":"low","title":"clean the car"}"#)])),
    case(B, Fresh, "add prepare slides high priority #work #conference", "add", calls(&[("add_task", r#"{"priority":"high","tags":["work","conference"],"title":"prepare slides"}"#)])),
    case(B, Fresh, "new task: buy stamps", "add", calls(&[("add_task", r#"{"title":"buy stamps"}"#)])),
    case(B, Fresh, "todo: email the landlord", "add", calls(&[("add_task", r#"{"title":"email the landlord"}"#)])),
    case(B, Fresh, "dentist tomorrow at 3pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T14:00:00Z","title":"dentist"}"#)])),
    case(B, Fresh, "call mom", "add", calls(&[("add_task", r#"{"title":"call mom"}"#)])),
    case(B, Fresh, "pay electricity bill next monday", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T08:00:00Z","title":"pay electricity bill"}"#)])),
    case(B, Fresh, "I have to renew my passport in 2 months", "add", calls(&[("add_task", r#"{"due_date":"2027-01-27T08:00:00Z","title":"renew my passport"}"#)])),
    case(B, Fresh, "don't forget to water the plants tonight", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T19:00:00Z","reminder_offset_minutes":1,"title":"water the plants"}"#)])),
    case(B, Fresh, "add meeting with Sam on Monday at 10am", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T09:00:00Z","title":"meeting with Sam"}"#)])),
    case(B, Fresh, "add journal daily at 9pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T20:00:00Z","recurrence_rule":"DAILY","title":"journal"}"#)])),
    case(B, Fresh, "add buy paint tagged home", "add", calls(&[("add_task", r#"{"tags":["home"],"title":"buy paint"}"#)])),
    case(B, Fresh, "remind me in 2 hours to check the oven", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T12:00:00Z","reminder_offset_minutes":1,"title":"check the oven"}"#)])),
    case(B, Fresh, "add call mom at 5 tomorrow", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T16:00:00Z","title":"call mom"}"#)])),
    case(B, Fresh, "add pick up parcel from the post office by 6pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T17:00:00Z","title":"pick up parcel from the post office"}"#)])),
    case(U, Fresh, "add prepare the budget every weekday", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T09:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR","title":"prepare the budget"}"#)])),
    case(U, Fresh, "add yoga every monday", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T09:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=MO","title":"yoga"}"#)])),
    case(U, Fresh, "add pay rent every month on the 1st", "add", calls(&[("add_task", r#"{"due_date":"2026-12-01T09:00:00Z","recurrence_rule":"MONTHLY","title":"pay rent"}"#)])),
    case(U, Fresh, "add water plants every other day at 8am", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T08:00:00Z","recurrence_rule":"INTERVAL:2","title":"water plants"}"#)])),
    case(U, Fresh, "add file taxes annually on April 15", "add", calls(&[("add_task", r#"{"due_date":"2027-04-15T09:00:00Z","recurrence_rule":"YEARLY","title":"file taxes"}"#)])),
    case(U, Fresh, "add call the bank at 9", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"call the bank"}"#)])),
    case(U, Fresh, "add backup the laptop at 7", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T19:00:00Z","title":"backup the laptop"}"#)])),
    case(U, Fresh, "add check mail today", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T23:59:00Z","title":"check mail"}"#)])),
    case(U, Fresh, "add buy a gift this friday", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T23:59:00Z","title":"buy a gift"}"#)])),
    case(U, Fresh, "add clean the fridge friday", "add", calls(&[("add_task", r#"{"due_date":"2026-12-04T09:00:00Z","title":"clean the fridge"}"#)])),
    case(U, Fresh, "add order pizza tomorrow evening", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T18:00:00Z","title":"order pizza"}"#)])),
    case(U, Fresh, "add submit report in a week", "add", calls(&[("add_task", r#"{"due_date":"2026-12-04T09:00:00Z","title":"submit report"}"#)])),
    case(U, Fresh, "add review the contract on the 3rd", "add", calls(&[("add_task", r#"{"due_date":"2026-12-03T09:00:00Z","title":"review the contract"}"#)])),
    case(U, Fresh, "add go running tomorrow morning at 7", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T07:00:00Z","title":"go running"}"#)])),
    case(U, Fresh, "add renew domain on jan 5", "add", calls(&[("add_task", r#"{"due_date":"2027-01-05T09:00:00Z","title":"renew domain"}"#)])),
    case(U, Fresh, "add celebrate on nov 2", "add", calls(&[("add_task", r#"{"due_date":"2027-11-02T09:00:00Z","title":"celebrate"}"#)])),
    case(U, Fresh, "Buy birthday cake for Anna on Saturday", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"Buy birthday cake for Anna"}"#)])),
    case(U, Fresh, "add Call Mom about the party", "add", calls(&[("add_task", r#"{"title":"Call Mom about the party"}"#)])),
    case(U, Fresh, "add buy milk to my list", "add", calls(&[("add_task", r#"{"title":"buy milk"}"#)])),
    case(U, Fresh, "add read chapter 5 tomorrow", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"read chapter 5"}"#)])),
    case(U, Fresh, "add team lunch for 2 at 1pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T13:00:00Z","title":"team lunch for 2"}"#)])),
    case(U, Fresh, "please add pick up dry cleaning tomorrow thanks", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"pick up dry cleaning"}"#)])),
    case(U, Fresh, "add water plants every hour", "add", answer(NotUnderstood)),
    case(U, Fresh, "tomorrow at 5pm", "add", answer(NotUnderstood)),
    case(U, Fresh, "add a reminder to renew the lease on the 1st of every month", "add", calls(&[("add_task", r#"{"due_date":"2026-12-01T09:00:00Z","recurrence_rule":"MONTHLY","reminder_offset_minutes":1,"title":"renew the lease"}"#)])),
    case(U, Fresh, "weekly review every friday at 4pm #work", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T16:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=FR","tags":["work"],"title":"weekly review"}"#)])),
    case(U, Fresh, "add call dad in half an hour", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T10:30:00Z","title":"call dad"}"#)])),
    case(U, Fresh, "add bake bread the day after tomorrow", "add", calls(&[("add_task", r#"{"due_date":"2026-11-29T09:00:00Z","title":"bake bread"}"#)])),
    case(U, Fresh, "add renew car insurance every year on march 3", "add", calls(&[("add_task", r#"{"due_date":"2027-03-03T09:00:00Z","recurrence_rule":"YEARLY","title":"renew car insurance"}"#)])),
    case(U, Fresh, "add read every page", "add", answer(NotUnderstood)),
    case(U, Fresh, "Add Buy Milk", "add", calls(&[("add_task", r#"{"title":"Buy Milk"}"#)])),
    case(U, Fresh, "add 'Pay rent' on dec 1", "add", calls(&[("add_task", r#"{"due_date":"2026-12-01T09:00:00Z","title":"Pay rent"}"#)])),
    case(U, Fresh, "hey, add milk please", "add", calls(&[("add_task", r#"{"title":"milk"}"#)])),
    case(U, Fresh, "can you remind me to call the vet on monday at 9am?", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T09:00:00Z","reminder_offset_minutes":1,"title":"call the vet"}"#)])),
    case(U, Fresh, "water plants every weekday morning", "add", calls(&[("add_task", r#"{"due_date":"2026-11-30T09:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR","title":"water plants"}"#)])),
    case(U, Fresh, "add laundry on sundays", "add", calls(&[("add_task", r#"{"due_date":"2026-11-29T09:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=SU","title":"laundry"}"#)])),
    case(U, Fresh, "add submit timesheet every friday at 5pm, remind me 1 hour before", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T17:00:00Z","recurrence_rule":"RRULE:FREQ=WEEKLY;BYDAY=FR","reminder_offset_minutes":60,"title":"submit timesheet"}"#)])),
    case(U, Fresh, "add renew passport by end of year", "add", calls(&[("add_task", r#"{"due_date":"2026-12-31T09:00:00Z","title":"renew passport"}"#)])),
    case(U, Fresh, "add prepare the quarterly report", "add", calls(&[("add_task", r#"{"title":"prepare the quarterly report"}"#)])),
    case(U, Fresh, "add backup weekly", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","recurrence_rule":"WEEKLY","title":"backup"}"#)])),
    case(U, Fresh, "move the couch tomorrow", "add", calls(&[("add_task", r#"{"due_date":"2026-11-28T09:00:00Z","title":"move the couch"}"#)])),
    case(U, Fresh, "remind me 30 minutes before to call mom at 5pm", "add", calls(&[("add_task", r#"{"due_date":"2026-11-27T17:00:00Z","reminder_offset_minutes":30,"title":"call mom"}"#)])),
    case(B, Fresh, "list", "list", calls(&[("list_tasks", r#"{}"#)])),
    case(B, Fresh, "show my tasks", "list", calls(&[("list_tasks", r#"{}"#)])),
    case(B, Fresh, "what's due this week", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-29T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "what's due today", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-27T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "what's due tomorrow", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-27T23:00:00Z","due_before":"2026-11-28T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show high priority tasks", "list", calls(&[("list_tasks", r#"{"priority":"high"}"#)])),
    case(B, Fresh, "what's overdue", "list", calls(&[("list_tasks", r#"{"order":"asc","overdue":true,"sort":"due_date"}"#)])),
    case(B, Fresh, "show completed tasks", "list", calls(&[("list_tasks", r#"{"status":"completed"}"#)])),
    case(B, Fresh, "search groceries", "list", calls(&[("list_tasks", r#"{"search":"groceries"}"#)])),
    case(B, Fresh, "find milk", "list", calls(&[("list_tasks", r#"{"search":"milk"}"#)])),
    case(B, Fresh, "tasks tagged work", "list", calls(&[("list_tasks", r#"{"tags":["work"]}"#)])),
    case(B, Fresh, "#work tasks", "list", calls(&[("list_tasks", r#"{"tags":["work"]}"#)])),
    case(B, Fresh, "pending tasks", "list", calls(&[("list_tasks", r#"{"status":"pending"}"#)])),
    case(B, Fresh, "what's due next week", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-29T23:00:00Z","due_before":"2026-12-06T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "what do I have on friday", "list", calls(&[("list_tasks", r#"{"due_after":"2026-12-03T23:00:00Z","due_before":"2026-12-04T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "what's due by friday", "list", calls(&[("list_tasks", r#"{"due_before":"2026-12-04T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show low priority tasks", "list", calls(&[("list_tasks", r#"{"priority":"low"}"#)])),
    case(B, Fresh, "show recurring tasks", "list", calls(&[("list_tasks", r#"{"is_recurring":true}"#)])),
    case(B, Fresh, "what am I working on", "list", calls(&[("list_tasks", r#"{"status":"in_progress"}"#)])),
    case(B, Fresh, "what's left", "list", calls(&[("list_tasks", r#"{"status":"pending"}"#)])),
    case(B, Fresh, "what have I done", "list", calls(&[("list_tasks", r#"{"status":"completed"}"#)])),
    case(B, Fresh, "list tasks by priority", "list", calls(&[("list_tasks", r#"{"order":"desc","sort":"priority"}"#)])),
    case(B, Fresh, "show in progress tasks", "list", calls(&[("list_tasks", r#"{"status":"in_progress"}"#)])),
    case(B, Fresh, "what's on my plate today", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-27T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "is anything overdue?", "list", calls(&[("list_tasks", r#"{"order":"asc","overdue":true,"sort":"due_date"}"#)])),
    case(B, Fresh, "show urgent tasks", "list", calls(&[("list_tasks", r#"{"priority":"high"}"#)])),
    case(B, Fresh, "search for the report", "list", calls(&[("list_tasks", r#"{"search":"report"}"#)])),
    case(B, Fresh, "look for dentist", "list", calls(&[("list_tasks", r#"{"search":"dentist"}"#)])),
    case(B, Fresh, "what's due this month", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-30T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "any tasks due this weekend?", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-27T23:00:00Z","due_before":"2026-11-29T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show my tasks by due date", "list", calls(&[("list_tasks", r#"{"order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show top 5 tasks", "list", calls(&[("list_tasks", r#"{"limit":5}"#)])),
    case(B, Fresh, "what's due", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show #work tasks due this week", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-29T23:00:00Z","order":"asc","sort":"due_date","tags":["work"]}"#)])),
    case(B, Fresh, "what's due in the next 3 days", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-30T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "what's due this week blah", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-26T23:00:00Z","due_before":"2026-11-29T23:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(B, Fresh, "show completed tasks from last week", "list", calls(&[("list_tasks", r#"{"status":"completed"}"#)])),
    case(U, Fresh, "list my tasks", "list", calls(&[("list_tasks", r#"{}"#)])),
    case(U, Fresh, "what's due this week", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-27T00:00:00Z","due_before":"2026-11-30T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "what's overdue", "list", calls(&[("list_tasks", r#"{"order":"asc","overdue":true,"sort":"due_date"}"#)])),
    case(U, Fresh, "show high priority tasks", "list", calls(&[("list_tasks", r#"{"priority":"high"}"#)])),
    case(U, Fresh, "completed tasks", "list", calls(&[("list_tasks", r#"{"status":"completed"}"#)])),
    case(U, Fresh, "give me my tasks", "list", calls(&[("list_tasks", r#"{}"#)])),
    case(U, Fresh, "show tasks about budget", "list", calls(&[("list_tasks", r#"{"search":"budget"}"#)])),
    case(U, Fresh, "show me what's due tomorrow", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-28T00:00:00Z","due_before":"2026-11-29T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "anything due tomorrow?", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-28T00:00:00Z","due_before":"2026-11-29T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "what should I do today", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-27T00:00:00Z","due_before":"2026-11-28T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "how many tasks do I have", "list", calls(&[("list_tasks", r#"{}"#)])),
    case(U, Fresh, "whats due this week", "list", calls(&[("list_tasks", r#"{"due_after":"2026-11-27T00:00:00Z","due_before":"2026-11-30T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "show me the dentist task", "list", calls(&[("list_tasks", r#"{"search":"dentist"}"#)])),
    case(U, Fresh, "what's due on Dec 3", "list", calls(&[("list_tasks", r#"{"due_after":"2026-12-03T00:00:00Z","due_before":"2026-12-04T00:00:00Z","order":"asc","sort":"due_date"}"#)])),
    case(U, Fresh, "list tasks tagged #work", "list", calls(&[("list_tasks", r#"{"tags":["work"]}"#)])),
    case(U, Fresh, "find tasks about rent", "list", calls(&[("list_tasks", r#"{"search":"rent"}"#)])),
    case(B, Fresh, "done with buy milk", "complete", calls(&[("complete_task", r#"{"task_id":"T1"}"#)])),
    case(B, Fresh, "complete 2", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(B, Fresh, "mark the report as done", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(B, Fresh, "finished the second one", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(B, Fresh, "complete #3", "complete", calls(&[("complete_task", r#"{"task_id":"T5"}"#)])),
    case(B, Fresh, "finished calling mom", "complete", calls(&[("complete_task", r#"{"task_id":"T5"}"#)])),
    case(B, Fresh, "buy milk is done", "complete", calls(&[("complete_task", r#"{"task_id":"T1"}"#)])),
    case(B, Fresh, "the report's finished", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(B, Fresh, "complete water the plants", "complete", calls(&[("complete_task", r#"{"task_id":"T8"}"#)])),
    case(B, Fresh, "check off fix the server", "complete", calls(&[("complete_task", r#"{"task_id":"T10"}"#)])),
    case(B, Fresh, "tick off 1", "complete", calls(&[("complete_task", r#"{"task_id":"T1"}"#)])),
    case(B, Fresh, "complete the last one", "complete", calls(&[("complete_task", r#"{"task_id":"T10"}"#)])),
    case(B, Fresh, "complete pay rent", "complete", calls(&[("complete_task", r#"{"task_id":"T4"}"#)])),
    case(B, Fresh, "complete renew passport", "complete", answer(NothingToDo)),
    case(B, Fresh, "complete milk", "complete", answer(Clarify(&[1, 2]))),
    case(B, Fresh, "complete call", "complete", answer(Clarify(&[5, 15]))),
    case(B, Fresh, "complete clean", "complete", calls(&[("complete_task", r#"{"task_id":"T14"}"#)])),
    case(B, Fresh, "complete 7", "complete", answer(NotFound)),
    case(B, Fresh, "complete groceries", "complete", answer(NotFound)),
    case(B, Added, "complete it", "complete", calls(&[("complete_task", r#"{"task_id":"T17"}"#)])),
    case(B, Fresh, "complete the quarterly reprot", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(B, Fresh, "done", "complete", answer(NotUnderstood)),
    case(U, Fresh, "i finished email bob about the budget", "complete", calls(&[("complete_task", r#"{"task_id":"T9"}"#)])),
    case(U, Fresh, "mark task 4 as complete", "complete", calls(&[("complete_task", r#"{"task_id":"T10"}"#)])),
    case(U, Listed, "complete 2", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(U, Fresh, "complete 1st", "complete", calls(&[("complete_task", r#"{"task_id":"T1"}"#)])),
    case(U, Fresh, "complete task two", "complete", calls(&[("complete_task", r#"{"task_id":"T3"}"#)])),
    case(U, Fresh, "finish 3", "complete", calls(&[("complete_task", r#"{"task_id":"T5"}"#)])),
    case(U, Fresh, "I did the laundry", "complete", answer(NotFound)),
    case(U, Fresh, "done with it", "complete", answer(NotFound)),
    case(U, Fresh, "mark 1 done", "complete", calls(&[("complete_task", r#"{"task_id":"T1"}"#)])),
    case(U, Fresh, "call mom is done", "complete", calls(&[("complete_task", r#"{"task_id":"T5"}"#)])),
    case(U, Fresh, "it's done", "complete", answer(NotFound)),
    case(U, Added, "it's done", "complete", calls(&[("complete_task", r#"{"task_id":"T17"}"#)])),
    case(B, Fresh, "delete buy milk", "delete", calls(&[("delete_task", r#"{"task_id":"T1"}"#)])),
    case(B, Fresh, "remove task 3", "delete", calls(&[("delete_task", r#"{"task_id":"T5"}"#)])),
    case(B, Fresh, "get rid of the dentist appointment", "delete", calls(&[("delete_task", r#"{"task_id":"T6"}"#)])),
    case(B, Fresh, "delete 4", "delete", calls(&[("delete_task", r#"{"task_id":"T10"}"#)])),
    case(B, Fresh, "trash read chapter 5", "delete", calls(&[("delete_task", r#"{"task_id":"T12"}"#)])),
    case(B, Fresh, "delete milk", "delete", answer(Clarify(&[1, 2]))),
    case(B, Fresh, "delete all tasks", "delete", answer(NotUnderstood)),
    case(B, Fresh, "delete groceries", "delete", answer(NotFound)),
    case(B, Added, "delete it", "delete", calls(&[("delete_task", r#"{"task_id":"T17"}"#)])),
    case(B, Fresh, "remove pay rent", "delete", calls(&[("delete_task", r#"{"task_id":"T4"}"#)])),
    case(B, Fresh, "delete the first one", "delete", calls(&[("delete_task", r#"{"task_id":"T1"}"#)])),
    case(U, Fresh, "remove clean the kitchen from my list", "delete", calls(&[("delete_task", r#"{"task_id":"T14"}"#)])),
    case(U, Fresh, "delete everything", "delete", answer(NotUnderstood)),
    case(B, Fresh, "rename buy milk to buy oat milk", "rename", calls(&[("update_task", r#"{"task_id":"T1","title":"buy oat milk"}"#)])),
    case(B, Fresh, "rename 3 to Call Mom on Sunday", "rename", calls(&[("update_task", r#"{"task_id":"T5","title":"Call Mom on Sunday"}"#)])),
    case(B, Fresh, "change the title of the report to Q4 report", "rename", calls(&[("update_task", r#"{"task_id":"T3","title":"Q4 report"}"#)])),
    case(B, Fresh, "rename buy milk and eggs to go to the shop", "rename", calls(&[("update_task", r#"{"task_id":"T2","title":"go to the shop"}"#)])),
    case(B, Added, "rename it to buy sourdough", "rename", calls(&[("update_task", r#"{"task_id":"T17","title":"buy sourdough"}"#)])),
    case(B, Fresh, "rename 2", "rename", answer(NotUnderstood)),
    case(B, Fresh, "rename fix the server to Fix the server", "rename", answer(NothingToDo)),
    case(B, Fresh, "change 1 to buy soy milk", "rename", calls(&[("update_task", r#"{"task_id":"T1","title":"buy soy milk"}"#)])),
    case(U, Fresh, "rename talk to bob to call bob", "rename", calls(&[("update_task", r#"{"task_id":"T18","title":"call bob"}"#)])),
    case(B, Fresh, "move the report to friday", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-04T09:00:00Z","task_id":"T3"}"#)])),
    case(B, Fresh, "reschedule 2 to tomorrow at 10", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-28T09:00:00Z","task_id":"T3"}"#)])),
    case(B, Fresh, "move buy milk to next monday", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-30T16:00:00Z","task_id":"T1"}"#)])),
    case(B, Fresh, "postpone call mom until tomorrow", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-28T08:00:00Z","task_id":"T5"}"#)])),
    case(B, Fresh, "push fix the server to next week", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-30T08:00:00Z","task_id":"T10"}"#)])),
    case(B, Fresh, "change the due date of pay rent to dec 3", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-03T08:00:00Z","task_id":"T4"}"#)])),
    case(B, Fresh, "move 1 to tonight", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-27T19:00:00Z","task_id":"T1"}"#)])),
    case(B, Fresh, "remove the due date from buy milk", "reschedule", calls(&[("update_task", r#"{"due_date":null,"task_id":"T1"}"#)])),
    case(B, Fresh, "clear the deadline of pay rent", "reschedule", calls(&[("update_task", r#"{"due_date":null,"reminder_offset_minutes":null,"task_id":"T4"}"#)])),
    case(B, Fresh, "move the report", "reschedule", answer(NotUnderstood)),
    case(B, Fresh, "move milk to friday", "reschedule", answer(Clarify(&[1, 2]))),
    case(B, Fresh, "set 3 due friday at 2pm", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-04T13:00:00Z","task_id":"T5"}"#)])),
    case(B, Added, "move it to monday", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-30T08:00:00Z","task_id":"T17"}"#)])),
    case(U, Fresh, "reschedule the dentist appointment to dec 10 at 4pm", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-10T16:00:00Z","task_id":"T6"}"#)])),
    case(U, Fresh, "move 2 to next friday at 3pm", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-04T15:00:00Z","task_id":"T3"}"#)])),
    case(U, Fresh, "reschedule email bob to tomorrow morning", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-28T09:00:00Z","task_id":"T9"}"#)])),
    case(U, Fresh, "push 1 back to monday", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-30T16:00:00Z","task_id":"T1"}"#)])),
    case(U, Fresh, "move talk to bob to friday", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-12-04T09:00:00Z","task_id":"T18"}"#)])),
    case(U, Fresh, "postpone 2 tomorrow", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-28T09:00:00Z","task_id":"T3"}"#)])),
    case(B, Fresh, "update buy milk to high priority", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T1"}"#)])),
    case(U, Fresh, "update 2 to tomorrow at 10am", "reschedule", calls(&[("update_task", r#"{"due_date":"2026-11-28T10:00:00Z","task_id":"T3"}"#)])),
    case(B, Fresh, "make buy milk high priority", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T1"}"#)])),
    case(B, Fresh, "change priority of 3 to low", "priority", calls(&[("update_task", r#"{"priority":"low","task_id":"T5"}"#)])),
    case(B, Fresh, "set the report to low", "priority", calls(&[("update_task", r#"{"priority":"low","task_id":"T3"}"#)])),
    case(B, Fresh, "make 4 urgent", "priority", answer(NothingToDo)),
    case(B, Fresh, "make 1 urgent", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T1"}"#)])),
    case(B, Fresh, "prioritize call mom", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T5"}"#)])),
    case(B, Fresh, "lower the priority of fix the server", "priority", calls(&[("update_task", r#"{"priority":"low","task_id":"T10"}"#)])),
    case(B, Fresh, "mark the report as low priority", "priority", calls(&[("update_task", r#"{"priority":"low","task_id":"T3"}"#)])),
    case(B, Added, "make it high priority", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T17"}"#)])),
    case(B, Fresh, "set priority of milk to high", "priority", answer(Clarify(&[1, 2]))),
    case(B, Fresh, "deprioritize plan team offsite", "priority", answer(NothingToDo)),
    case(U, Fresh, "set buy milk to high priority", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T1"}"#)])),
    case(U, Fresh, "raise the priority of call the bank", "priority", calls(&[("update_task", r#"{"priority":"high","task_id":"T15"}"#)])),
    case(U, Fresh, "make the offsite medium priority", "priority", calls(&[("update_task", r#"{"priority":"medium","task_id":"T11"}"#)])),
    case(B, Fresh, "start the report", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T3"}"#)])),
    case(B, Fresh, "I'm working on call mom", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T5"}"#)])),
    case(B, Fresh, "mark 2 as in progress", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T3"}"#)])),
    case(B, Fresh, "reopen renew passport", "status", calls(&[("update_task", r#"{"status":"pending","task_id":"T7"}"#)])),
    case(B, Fresh, "mark clean the garage as not done", "status", calls(&[("update_task", r#"{"status":"pending","task_id":"T13"}"#)])),
    case(B, Fresh, "start book dentist appointment", "status", answer(NothingToDo)),
    case(B, Fresh, "begin the server fix", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T10"}"#)])),
    case(U, Fresh, "start 3", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T5"}"#)])),
    case(U, Fresh, "mark 1 as started", "status", calls(&[("update_task", r#"{"status":"in_progress","task_id":"T1"}"#)])),
    case(U, Fresh, "reopen 2", "status", answer(NothingToDo)),
    case(U, Fresh, "mark 1", "status", answer(NotUnderstood)),
    case(U, Fresh, "start the car", "status", answer(NotFound)),
    case(B, Added, "undo", "undo", calls(&[("delete_task", r#"{"task_id":"T17"}"#)])),
    case(B, Completed, "undo", "undo", calls(&[("delete_task", r#"{"task_id":"T4"}"#), ("update_task", r#"{"status":"pending","task_id":"T16"}"#)])),
    case(B, Deleted, "undo that", "undo", calls(&[("add_task", r#"{"description":"Compare two quotes first","due_date":"2026-12-10T09:00:00Z","priority":"high","recurrence_rule":"YEARLY","reminder_offset_minutes":1440,"tags":["car"],"title":"Renew car insurance"}"#)])),
    case(B, Updated, "undo", "undo", calls(&[("update_task", r#"{"due_date":"2026-11-28T16:00:00Z","recurrence_rule":null,"task_id":"T1","title":"Buy milk"}"#)])),
    case(B, Listed, "undo", "undo", answer(NothingToDo)),
    case(B, Fresh, "undo", "undo", answer(NothingToDo)),
    case(B, Failed, "undo", "undo", answer(NothingToDo)),
    case(U, Added, "take that back", "undo", calls(&[("delete_task", r#"{"task_id":"T17"}"#)])),
    case(U, Fresh, "undo please", "undo", answer(NothingToDo)),
    case(B, Fresh, "help", "help", answer(Help)),
    case(B, Fresh, "what can you do", "help", answer(Help)),
    case(B, Fresh, "?", "help", answer(Help)),
    case(B, Fresh, "how does this work", "help", answer(Help)),
    case(B, Fresh, "hi", "smalltalk", answer(SmallTalk)),
    case(B, Fresh, "thanks!", "smalltalk", answer(SmallTalk)),
    case(B, Fresh, "thank you", "smalltalk", answer(SmallTalk)),
    case(B, Fresh, "good morning", "smalltalk", answer(SmallTalk)),
    case(B, Fresh, "bye", "smalltalk", answer(SmallTalk)),
    case(B, Fresh, "asdf qwerty", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "what's the weather", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "milk", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "tell me a joke", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "why?", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "hmm", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "!!!", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "42", "not_understood", answer(NotUnderstood)),
    case(B, Fresh, "who are you", "not_understood", answer(NotUnderstood)),
];

/// Replaces `"T<n>"` with fixture task n's id.
fn with_ids(json: &str) -> String {
    let mut text = json.to_owned();
    for n in (1..=99u128).rev() {
        text = text.replace(&format!("\"T{n}\""), &format!("\"{}\"", id(n)));
    }
    text
}

fn expected_calls(expected: &[(&str, &str)]) -> Vec<ToolCall> {
    expected
        .iter()
        .map(|(name, json)| {
            let arguments: Value = serde_json::from_str(&with_ids(json)).expect("valid JSON");
            ToolCall::new(name, arguments)
        })
        .collect()
}

fn show(plan: &Plan) -> String {
    match plan {
        Plan::Act { calls, intent } => {
            let calls: Vec<String> = calls
                .iter()
                .map(|call| format!("{} {}", call.name, call.arguments))
                .collect();
            format!("[{}] {}", intent.kind(), calls.join(" ; "))
        }
        Plan::Answer { kind, text } => format!("{kind:?}: {text}"),
    }
}

/// Checks one row; `Err` explains the mismatch.
fn check(case: &Case, actual: &Plan) -> Result<(), String> {
    let fits = match (case.expect, actual) {
        (Expect::Calls(expected), Plan::Act { calls, intent }) => {
            *calls == expected_calls(expected) && intent.kind() == case.intent
        }
        (Expect::Answer(kind), Plan::Answer { kind: actual, .. }) => match (kind, actual) {
            (Kind::Help, AnswerKind::Help)
            | (Kind::SmallTalk, AnswerKind::SmallTalk)
            | (Kind::NotUnderstood, AnswerKind::NotUnderstood)
            | (Kind::NotFound, AnswerKind::NotFound)
            | (Kind::NothingToDo, AnswerKind::Nothing) => true,
            (Kind::Clarify(expected), AnswerKind::Clarify { candidates }) => {
                *candidates == expected.iter().map(|n| id(*n)).collect::<Vec<_>>()
            }
            _ => false,
        },
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        let expected = match case.expect {
            Expect::Calls(calls) => format!("[{}] {calls:?}", case.intent),
            Expect::Answer(kind) => format!("{kind:?}"),
        };
        Err(format!(
            "{:?} ({}, after {:?})\n    expected: {expected}\n    actual:   {}",
            case.say,
            case.zone,
            case.before,
            show(actual)
        ))
    }
}

/// Plans one row in its context.
pub fn run(case: &Case, tasks: &[crate::task::Task], last_list: &[uuid::Uuid]) -> Plan {
    let zone: Tz = case.zone.parse().expect("zone");
    let last_actions = actions(case.before, tasks);
    let ctx = context(zone, tasks, last_list, &last_actions);
    plan(case.say, &ctx)
}

#[test]
fn corpus_plans_match_and_accuracy_by_intent() {
    let tasks = fixture_tasks();
    let last_list = fixture_last_list();
    let mut by_intent: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for case in CASES {
        let actual = run(case, &tasks, &last_list);
        let tally = by_intent.entry(case.intent).or_default();
        tally.1 += 1;
        match check(case, &actual) {
            Ok(()) => tally.0 += 1,
            Err(failure) => failures.push(failure),
        }
    }
    println!("offline assistant corpus: accuracy by intent");
    println!(
        "{:<16} {:>7} {:>6} {:>9}",
        "intent", "correct", "total", "accuracy"
    );
    let (mut correct, mut total) = (0, 0);
    for (intent, (right, all)) in &by_intent {
        println!(
            "{intent:<16} {right:>7} {all:>6} {:>8.1}%",
            100.0 * *right as f64 / *all as f64
        );
        correct += right;
        total += all;
    }
    println!(
        "{:<16} {correct:>7} {total:>6} {:>8.1}%",
        "all",
        100.0 * correct as f64 / total as f64
    );
    assert!(
        failures.is_empty(),
        "{} of {total} corpus rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(CASES.len() >= 170, "the corpus must keep at least 170 rows");
    for intent in [
        "add",
        "list",
        "complete",
        "delete",
        "rename",
        "reschedule",
        "priority",
        "status",
        "undo",
        "help",
        "smalltalk",
        "not_understood",
    ] {
        assert!(by_intent.contains_key(intent), "no row for {intent}");
    }
    for zone in [B, U] {
        assert!(CASES.iter().any(|case| case.zone == zone));
    }
}
