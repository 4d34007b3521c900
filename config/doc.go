// Package config loads and checks followupd's TOML configuration.
//
// Load reads a file, Parse checks bytes; both apply the defaults and return
// a *Config together with every problem found, as an *Errors whose lines
// read "FILE:LINE: key: problem" (key paths use 0-based indices:
// "account[1].imap.security"). `followupd check` prints them all at once.
//
// How problems get their lines: toml.Decode parses the file into a generic
// tree (a syntax error stops there, with its line), then a small decoder in
// this package walks the tree into Config, so that a bad value does not
// hide the next one and unknown keys are reported where they are written.
// A scan of the source text (lines.go) maps each key path to its line.
// Values with rules of their own (Delay, Location, Date, Window, ClockTime,
// Security, Mode, Regexp) implement encoding.TextUnmarshaler and are checked
// while decoding; cross-field rules (unique names, password source, plain
// text towards remote hosts, templates) are checked after the defaults.
//
// Invariants:
//   - A *Config returned with a nil error is complete: defaults applied,
//     every rule's steps name existing templates, every template parsed
//     with missingkey=error and executed against SampleData with the
//     captures of each rule that uses it.
//   - Parse does no network I/O and reads no secrets; it reads ca_file
//     (relative paths are resolved against the config file's directory and
//     stored absolute). Passwords are read by Account.Password at use.
//   - No package state: every call works on its own values.
//
// Time zones come from the embedded tzdata (time/tzdata), so a zone name
// that loads on the build machine loads on a minimal host too.
package config

import _ "time/tzdata" // IANA zones without depending on the host's /usr/share/zoneinfo
