package config

import (
	"regexp"
	"text/template"
	"time"
)

// Config is a loaded, checked configuration. Zero values have been replaced
// by defaults by Load.
type Config struct {
	File string `toml:"-"` // path it was loaded from

	StateDir string `toml:"state_dir"` // holds followupd.db; default /var/lib/followupd
	// TimeZone, Calendar, Holidays, Workdays, SendWindow are defaults each
	// account may override.
	TimeZone   Location `toml:"time_zone"`   // IANA name; default UTC
	Calendar   string   `toml:"calendar"`    // ISO 3166 alpha-2 country for public holidays ("ru", "us", "de", ...); "" = weekends only
	Holidays   []Date   `toml:"holidays"`    // extra days off, "2026-12-31"
	Workdays   []Date   `toml:"workdays"`    // weekend days that are working days (Russia's moved Saturdays)
	SendWindow Window   `toml:"send_window"` // "09:00-18:00" local; empty = any time
	Lookback   Delay    `toml:"lookback"`    // on first start, track offers sent within this; default 14 days
	MaxOverdue Delay    `toml:"max_overdue"` // a step overdue by more is skipped; default 2 business days
	// AllowInsecure permits security = "none" towards non-loopback hosts.
	AllowInsecure bool `toml:"allow_insecure"`
	// PublicDomains extends the built-in list of public mail domains
	// (gmail.com, mail.ru, ...) where a same-domain sender is not a colleague.
	PublicDomains []string `toml:"public_domains"`
	// ColleagueAnswers: an answer from someone at the recipient's domain
	// counts (never for public domains). Default true.
	ColleagueAnswers *bool `toml:"colleague_answers"`
	// AnyMessageFromRecipient: any message from a recipient within the
	// tracking window counts as an answer, even in a new thread. Default true.
	AnyMessageFromRecipient *bool  `toml:"any_message_from_recipient"`
	LogLevel                string `toml:"log_level"` // debug|info|warn|error; default info
	// ControlSocket is the control CLI's Unix socket (mode 0600). Default:
	// $RUNTIME_DIRECTORY/control.sock when set (systemd RuntimeDirectory=),
	// else <state_dir>/control.sock.
	ControlSocket string `toml:"control_socket"`
	// MetricsListen, when set, serves Prometheus metrics on
	// http://ADDR/metrics (e.g. "127.0.0.1:9154"). Default: off.
	MetricsListen string `toml:"metrics_listen"`

	// SummaryMail is the daily summary email ([summary]).
	SummaryMail SummaryMail `toml:"summary"`

	Accounts  []Account           `toml:"account"`
	Rules     []Rule              `toml:"rule"`
	Templates map[string]Template `toml:"template"`

	lines *lineIndex // where each key is written, for later problems (CheckPasswords)
}

// Account is one watched mailbox and the identity reminders are sent from.
type Account struct {
	Name        string `toml:"name"`    // short unique name used in logs and the CLI; default: Address
	Address     string `toml:"address"` // the sender's address
	DisplayName string `toml:"display_name"`
	Username    string `toml:"username"` // default: Address
	// Exactly one of PasswordFile or PasswordEnv. PasswordFile may point into
	// $CREDENTIALS_DIRECTORY (systemd LoadCredential=).
	PasswordFile string  `toml:"password_file"`
	PasswordEnv  string  `toml:"password_env"`
	IMAP         Server  `toml:"imap"`
	SMTP         Server  `toml:"smtp"`
	Folders      Folders `toml:"folders"`
	// MaxPerHour paces reminders from this account; default 20.
	MaxPerHour int `toml:"max_per_hour"`
	// ServerSavesSent: the SMTP server files submitted mail in Sent itself
	// (Gmail); otherwise followupd APPENDs each reminder to Sent.
	ServerSavesSent bool `toml:"server_saves_sent"`
	Mode            Mode `toml:"mode"` // auto (default) | approve | dry-run

	// Per-account overrides of the top-level calendar settings; zero = inherit.
	TimeZone   Location `toml:"time_zone"`
	Calendar   string   `toml:"calendar"`
	SendWindow Window   `toml:"send_window"`
}

// SummaryMail configures the daily summary email: each sender gets their
// own, the leads get the whole team's.
type SummaryMail struct {
	Enabled bool `toml:"enabled"` // default false
	// Time is the local time it is sent on business days; default 08:30.
	// Each sender's own summary goes out at Time in their account's zone
	// and on their account's business days (its effective time_zone and
	// calendar, see Location and CalendarCode); the team summary at Time in
	// the top-level time_zone, on top-level business days.
	Time *ClockTime `toml:"time"`
	// Leads get the team summary (every account); empty = nobody does.
	Leads []string `toml:"leads"`
	// FromAccount names the account whose address and SMTP send the team
	// summary; default the first account. Each sender's own summary goes
	// through their own account.
	FromAccount string `toml:"from_account"`
	// Senders: each account gets its own summary. Default true.
	Senders *bool `toml:"senders"`
}

// DefaultSummaryTime is when the daily summary goes out: 08:30.
const DefaultSummaryTime = ClockTime(8*60 + 30)

// Server is an IMAP or SMTP endpoint.
type Server struct {
	Host     string   `toml:"host"`
	Port     int      `toml:"port"`     // default by protocol and security
	Security Security `toml:"security"` // tls (default) | starttls | none
	CAFile   string   `toml:"ca_file"`  // PEM bundle to trust in addition to the system roots
}

// Folders overrides folder discovery. Empty names are discovered: Inbox is
// INBOX; Sent and Drafts by SPECIAL-USE, then by common names.
type Folders struct {
	Inbox  string `toml:"inbox"`
	Sent   string `toml:"sent"`
	Drafts string `toml:"drafts"`
	// Stop is a folder (e.g. "Followup/Stop"): a tracked message moved or
	// copied there stops its follow-up. Empty = feature off.
	Stop string `toml:"stop"`
	// StopKeyword is an IMAP keyword that stops a follow-up when set on the
	// sent message; \Flagged always does. Default "$FollowupStop".
	StopKeyword string `toml:"stop_keyword"`
}

// Rule decides which sent messages are tracked and with which chain.
// Rules are tried in order; the first match wins.
type Rule struct {
	Name  string `toml:"name"`
	Kind  string `toml:"kind"` // offer, invoice, quote, ... (free text, shown in summaries)
	Match Match  `toml:"match"`
	Steps []Step `toml:"step"`
	// Mode, when set, makes this rule's reminders more cautious than the
	// account's mode (see Config.RuleMode); it never makes them less so.
	Mode Mode `toml:"mode"`
	// AutoReply says what an out-of-office does: "ignore" (default) or
	// "postpone" (hold the next step until the return date, capped by
	// MaxPostpone).
	AutoReply   string `toml:"auto_reply"`
	MaxPostpone Delay  `toml:"max_postpone"` // default 14 days
	// IncludeCc: reminders also go to the original Cc; default false.
	IncludeCc bool `toml:"include_cc"`
}

// Match lists a rule's criteria; all non-empty criteria must hold. Within
// a list, any entry may match. Named groups in the regexes become template
// variables (e.g. (?P<number>\d+)).
type Match struct {
	Subject []Regexp `toml:"subject"`
	Body    []Regexp `toml:"body"`
	// Attachment holds file name globs (path.Match syntax), lower-cased by
	// Load: match them against the lower-cased file name ("счет*.pdf").
	Attachment []string `toml:"attachment"`
	// AttachmentType holds content types, lower-cased by Load:
	// "application/pdf"; a subtype may be "*" ("image/*").
	AttachmentType []string `toml:"attachment_type"`
	// RecipientInclude and RecipientExclude hold addresses or domains
	// ("@example.com" or "example.com"), lower-cased by Load.
	RecipientInclude []string `toml:"recipient_include"`
	RecipientExclude []string `toml:"recipient_exclude"`
	// Header maps a header name (canonicalized by Load with
	// textproto.CanonicalMIMEHeaderKey, as in message.Record.Headers) to a
	// regex its decoded value must match.
	Header map[string]Regexp `toml:"header"`
}

// NeedsBody reports whether matching reads the body text.
func (m *Match) NeedsBody() bool { return len(m.Body) > 0 }

// Step is one reminder of a chain; After counts from the previous step's
// send time (the tracked message's for step 1).
type Step struct {
	After    Delay  `toml:"after"`
	Template string `toml:"template"`
}

// Template is a named reminder: Go text/template subject and body, optional
// HTML (html/template semantics are not used; HTML is written as given).
// Subject defaults to "Re: {{.Subject}}".
type Template struct {
	Subject string `toml:"subject"`
	Body    string `toml:"body"`
	HTML    string `toml:"html"`

	// Parsed at load; nil when the text is empty.
	SubjectT *template.Template `toml:"-"`
	BodyT    *template.Template `toml:"-"`
	HTMLT    *template.Template `toml:"-"`
}

// Security is how a connection is protected.
type Security string

const (
	SecurityTLS      Security = "tls"
	SecurityStartTLS Security = "starttls"
	SecurityNone     Security = "none"
)

// Mode is how due reminders are delivered.
type Mode string

const (
	ModeAuto    Mode = "auto"
	ModeApprove Mode = "approve"
	ModeDryRun  Mode = "dry-run"
)

// Delay is a Go duration ("36h") or a count of business days ("3 business
// days"). Business days are counted by package schedule's calendar.
type Delay struct {
	Duration     time.Duration
	BusinessDays int
}

// IsZero reports whether the delay is unset.
func (d Delay) IsZero() bool { return d.Duration == 0 && d.BusinessDays == 0 }

// Location wraps *time.Location so a bad zone name is reported with its line.
type Location struct{ *time.Location }

// Date is a calendar day in the configured zone ("2026-05-11").
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Window is a daily local send window; Start == End means always open.
type Window struct {
	Start, End ClockTime
	Set        bool
}

// ClockTime is minutes since local midnight.
type ClockTime int

// Regexp is a compiled regular expression with its source text.
type Regexp struct {
	*regexp.Regexp
}
