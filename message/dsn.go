package message

import (
	"bytes"
	"strings"
)

// parseDSN reads the per-recipient blocks of a message/delivery-status body
// (RFC 3464 §2.3): Final-Recipient (else Original-Recipient), Action,
// Status, Diagnostic-Code. The per-message block (Reporting-MTA, ...) has
// none of these and is skipped.
//
// QUIRK: some MTAs write several recipients in one block without the empty
// line between them; a second Final-Recipient starts a new recipient.
// Others indent the fields or put blank lines with spaces between blocks;
// splitHeader takes both.
func parseDSN(b []byte) []DSNRecipient {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	var out []DSNRecipient
	for _, block := range splitBlocks(b) {
		fields, _, _ := splitHeader(bytes.TrimLeft(block, " \t"))
		var cur DSNRecipient
		var orig string
		push := func() {
			if cur.FinalRecipient == "" {
				cur.FinalRecipient = orig
			}
			if cur.FinalRecipient != "" || cur.Action != "" {
				out = append(out, cur)
			}
			cur, orig = DSNRecipient{}, ""
		}
		for _, f := range fields {
			switch f.key {
			case "Final-Recipient":
				if cur.FinalRecipient != "" {
					push()
				}
				cur.FinalRecipient = dsnAddress(f.value)
			case "Original-Recipient":
				orig = dsnAddress(f.value)
			case "Action":
				cur.Action = strings.ToLower(firstWord(f.value))
			case "Status":
				cur.Status = firstWord(f.value)
			case "Diagnostic-Code":
				cur.Diagnostic = dsnText(f.value)
			}
		}
		push()
	}
	return out
}

// splitBlocks splits at lines that are empty or only whitespace.
func splitBlocks(b []byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, line...)
		cur = append(cur, '\n')
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// dsnAddress reads "rfc822; user@example.com" (address-type optional).
func dsnAddress(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		v = after
	}
	v = strings.TrimSpace(v)
	v = strings.Trim(v, "<>\"' ")
	return strings.ToLower(strings.ToValidUTF8(v, ""))
}

// dsnText drops the "smtp;" diagnostic-type and collapses whitespace.
func dsnText(v string) string {
	if typ, after, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") {
		v = after
	}
	return strings.ToValidUTF8(strings.Join(strings.Fields(v), " "), "\uFFFD")
}

func firstWord(v string) string {
	f := strings.Fields(v)
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], ";()")
}
