package message

import "bytes"

// ParseShallow reads only what a sync needs to decide that a message is
// history (its Message-ID and Date) and keeps the header block in Raw for
// Deepen: a first sync stores most of a big mailbox without reading the
// rest of each header (addresses, subject, media type), about a fifth of
// ParseHeader's cost (BenchmarkParseShallow). A message without a usable
// Message-ID gets no shallow record (ok=false): its synthetic id is made of
// the other fields.
func ParseShallow(raw []byte) (rec *Record, ok bool) {
	msgid, date, plain := scanIDDate(raw)
	if !plain {
		// Anything unusual: read it as ParseHeader does.
		fields, _, _ := splitHeader(fixLineEnds(raw))
		msgid, _ = first(fields, "Message-Id")
		date, _ = first(fields, "Date")
	}
	ids := ParseMessageIDs(msgid)
	if len(ids) == 0 {
		return nil, false
	}
	rec = &Record{MessageID: ids[0], Raw: raw}
	if len(date) > 0 {
		rec.Date, _ = parseDate(date) // zero when unreadable, as ParseHeader
	}
	return rec, true
}

// scanIDDate finds the first Message-ID and Date fields of a plain header
// block (lines "Key: value" ending in LF or CRLF, folded lines indented,
// ended by an empty line or the end) without splitting every field, and
// returns their values as splitHeader would (unfolded, trimmed). A block
// that is not plain (a line without a colon or with blanks in its key, a
// whitespace-only line, a bare CR) gets plain=false: splitHeader's quirks
// are for it.
func scanIDDate(raw []byte) (msgid, date string, plain bool) {
	const (
		none = iota
		inID
		inDate
	)
	cur := none // the field the current continuation lines belong to
	var idDone, dateDone bool
	for len(raw) > 0 {
		var line []byte
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			line, raw = raw, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return "", "", false
		}
		if len(line) == 0 {
			break // end of header
		}
		if line[0] == ' ' || line[0] == '\t' {
			v := bytes.TrimSpace(line)
			if len(v) == 0 {
				return "", "", false // whitespace-only: splitHeader's rules
			}
			switch cur {
			case inID:
				msgid += " " + string(v)
			case inDate:
				date += " " + string(v)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return "", "", false
		}
		for _, c := range line[:colon] {
			if c < 0x21 || c > 0x7e {
				// Blanks or other bytes splitHeader trims or keeps
				// (\f, \v, 8-bit): its rules, not ours.
				return "", "", false
			}
		}
		cur = none
		key := line[:colon]
		switch {
		case !idDone && asciiEqualFold(key, "message-id"):
			msgid, idDone, cur = string(bytes.TrimSpace(line[colon+1:])), true, inID
		case !dateDone && asciiEqualFold(key, "date"):
			date, dateDone, cur = string(bytes.TrimSpace(line[colon+1:])), true, inDate
		}
	}
	return msgid, date, true
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// IsShallow reports whether r still holds only what ParseShallow read.
func (r *Record) IsShallow() bool { return r.Raw != nil }

// Deepen parses a shallow record's header in full, keeping what the server
// said of the message (location, Internal, Flags, Attachments) and the
// fallbacks taken for a missing Date (Internal) and Content-Type (the
// structure's). It returns ParseHeader's error for a partly unreadable
// header; the record is complete either way. A parsed record is left as it
// is.
func (r *Record) Deepen() error {
	if r.Raw == nil {
		return nil
	}
	full, err := ParseHeader(r.Raw)
	full.Account, full.Mailbox, full.Role = r.Account, r.Mailbox, r.Role
	full.UIDValidity, full.UID = r.UIDValidity, r.UID
	full.Internal, full.Flags, full.Attachments = r.Internal, r.Flags, r.Attachments
	if full.Date.IsZero() {
		full.Date = r.Internal
	}
	if full.ContentType == "" {
		full.ContentType = r.ContentType
	}
	full.Body, full.HasBody, full.Report = r.Body, r.HasBody, r.Report
	*r = *full
	return err
}
