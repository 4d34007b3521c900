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
	h, plain := scanShallow(raw)
	if !plain {
		// Anything unusual: read it as ParseHeader does.
		fields, _, _ := splitHeader(fixLineEnds(raw))
		h.msgid, _ = first(fields, "Message-Id")
		h.date, _ = first(fields, "Date")
		h.irt = all(fields, "In-Reply-To", " ")
		h.refs = all(fields, "References", " ")
	}
	ids := ParseMessageIDs(h.msgid)
	if len(ids) == 0 {
		return nil, false
	}
	rec = &Record{MessageID: ids[0], Raw: raw}
	if len(h.date) > 0 {
		rec.Date, _ = parseDate(h.date) // zero when unreadable, as ParseHeader
	}
	// What it cites, as ParseHeader reads it: a message citing a tracked
	// one is never history, whatever its dates say.
	rec.InReplyTo = ParseMessageIDs(h.irt)
	rec.References = ParseMessageIDs(h.refs)
	return rec, true
}

// shallowFields are the header values ParseShallow reads, as splitHeader
// and first/all give them: the first Message-ID and Date, every
// In-Reply-To and References joined by a space.
type shallowFields struct{ msgid, date, irt, refs string }

// scanShallow finds shallowFields in a plain header block (lines
// "Key: value" ending in LF or CRLF, folded lines indented, ended by an
// empty line or the end) without splitting every field. A block that is not
// plain (a line without a colon, a field name with a byte outside
// 0x21-0x7e, a whitespace-only line, a bare CR) gets plain=false:
// splitHeader's quirks are for it.
func scanShallow(raw []byte) (h shallowFields, plain bool) {
	var cur *string // the value the current continuation lines belong to
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
			return h, false
		}
		if len(line) == 0 {
			break // end of header
		}
		if line[0] == ' ' || line[0] == '\t' {
			v := bytes.TrimSpace(line)
			if len(v) == 0 {
				return h, false // whitespace-only: splitHeader's rules
			}
			if cur != nil {
				*cur += " " + string(v)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, false
		}
		for _, c := range line[:colon] {
			if c < 0x21 || c > 0x7e {
				// Blanks or other bytes splitHeader trims or keeps
				// (\f, \v, 8-bit): its rules, not ours.
				return h, false
			}
		}
		cur = nil
		key, val := line[:colon], string(bytes.TrimSpace(line[colon+1:]))
		switch {
		case asciiEqualFold(key, "message-id"):
			if !idDone {
				h.msgid, idDone, cur = val, true, &h.msgid
			}
		case asciiEqualFold(key, "date"):
			if !dateDone {
				h.date, dateDone, cur = val, true, &h.date
			}
		case asciiEqualFold(key, "in-reply-to"):
			cur = appendValue(&h.irt, val)
		case asciiEqualFold(key, "references"):
			cur = appendValue(&h.refs, val)
		}
	}
	return h, true
}

// appendValue adds one more field's value to *all (all's " " join) and
// returns where its continuation lines go. Continuations of an earlier
// field end before the next one starts, so appending to *all is right.
func appendValue(all *string, val string) *string {
	if *all != "" {
		*all += " "
	}
	*all += val
	return all
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
	full.Partial = r.Partial // fewer fields than it had, still
	*r = *full
	return err
}
