// Package freeze holds freeze calendars: named sets of windows (recurring by RFC 5545 RRULE
// or 5-field cron, or one-off such as a holiday) during which releases must not ship, each
// window scoped by environment, runbook and tier.
//
// Evaluation is pure: Calendar.Validate and Calendar.Compile parse a calendar, and
// Schedule.FrozenAt answers whether a subject is frozen at a time and until when. The only
// I/O is LoadCatalog, which reads the reviewed calendar files of one folder at start.
// Calendars managed through the API live in the store, which evaluates them with this
// package; this package must not import the store, Temporal or HTTP.
package freeze
