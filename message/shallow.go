package message

// ParseShallow reads only what a sync needs to decide that a message is
// history (its Message-ID and Date) and keeps the header block in Raw for
// Deepen: a first sync stores most of a big mailbox without reading the
// rest of each header (addresses, subject, media type), about a fifth of
// ParseHeader's cost (BenchmarkParseShallow). A message without a usable
// Message-ID gets no shallow record (ok=false): its synthetic id is made of
// the other fields.
func ParseShallow(raw []byte) (rec *Record, ok bool) {
	fields, _, _ := splitHeader(fixLineEnds(raw))
	v, found := first(fields, "Message-Id")
	if !found {
		return nil, false
	}
	ids := ParseMessageIDs(v)
	if len(ids) == 0 {
		return nil, false
	}
	rec = &Record{MessageID: ids[0], Raw: raw}
	if v, ok := first(fields, "Date"); ok && len(v) > 0 {
		rec.Date, _ = parseDate(v) // zero when unreadable, as ParseHeader
	}
	return rec, true
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
