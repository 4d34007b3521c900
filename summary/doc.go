// Package summary renders the daily summary email: for one sender, or for
// the whole team (the lead's copy). It is a pure function of the store's
// follow-ups, the time and the location, (Data, now, loc) -> subject, text,
// HTML, so golden files pin its output (go test ./summary -update rewrites
// them). It does no I/O and reads no clock; the daemon collects the data,
// schedules the send and submits it.
//
// Everything is read from the follow-ups' History, whose entries carry the
// time, the event and the step (store invariant 2):
//
//   - reminders: sent, draft-sent (the sender sent our draft) and resolve
//     (a person confirmed an uncertain step). A sent entry whose reason
//     starts with "dry-run" was recorded but not sent; it is listed as
//     such and never counts as a reminder for conversion.
//   - answers: answer entries; "after a reminder" when a real reminder
//     precedes it in the same history.
//   - needs a person: bounced and failed follow-ups whose last transition is
//     within NeedsWindow, and every uncertain one (it stays there until the
//     CLI resolves it).
//   - approvals waiting: follow-ups in state draft, with how long they have
//     sat in Drafts.
//   - conversion, per sender and per rule, over 7 and 30 days: of the
//     follow-ups that got a reminder in the window, how many were answered
//     after their first reminder (by now).
//   - the chart: reminders and answers per local day over 14 days, drawn
//     with table cells of fixed heights (mail clients strip images and most
//     CSS, but every one renders a bgcolor'd cell).
//
// The HTML is produced by html/template, so subjects, names and amounts are
// escaped; styles are inline because mail clients drop <style> blocks.
package summary
