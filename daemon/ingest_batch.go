package daemon

import (
	"fmt"

	"followupd/classify"
	"followupd/message"
	"followupd/store"
)

// recordIncoming classifies the batch's new incoming messages and records
// their verdicts in one transaction, before any of them is applied: one
// fsync per fetched batch instead of one per message (a first sync of a
// 50,000-message INBOX spent 90 % of its time in fdatasync; bench/
// BenchmarkInitialSync). Writing every verdict of the batch before applying
// any keeps ingestIncoming's order per message (verdict stored, then
// follow-ups looked up), so an offer tracked concurrently by the Sent
// folder still finds it through applyKnownAnswers. It returns the verdicts
// by record; records it leaves out go through ingest as before.
//
// known holds the batch's Message-IDs the store already has (KnownMessages,
// read once by HandleMessages for both this and its own loop).
//
// Records in history (horizon.go: historyOf) are left out and not
// classified: HandleMessages only stores them.
func (d *Daemon) recordIncoming(a *account, recs []*message.Record, known map[string]*message.Record, history map[*message.Record]bool) (map[*message.Record]classify.Verdict, error) {
	var out map[*message.Record]classify.Verdict
	var ins []store.Incoming
	for _, rec := range recs {
		switch rec.Role {
		case message.RoleSent, message.RoleDrafts, message.RoleStop:
			continue
		}
		if rec.IsOwn() || d.fromTeam(rec) {
			continue // ingestIncoming ignores these
		}
		if known[rec.MessageID] != nil {
			continue // known: HandleMessages skips it
		}
		if history[rec] {
			continue
		}
		v, in, err := d.incomingVerdict(a, rec)
		if err != nil {
			d.log.Error("skipping message: internal error while classifying it", "account", a.cfg.Name, "mailbox", rec.Mailbox, "uid", rec.UID, "msgid", rec.MessageID, "err", err)
			continue
		}
		if out == nil {
			out = make(map[*message.Record]classify.Verdict)
		}
		out[rec] = v
		ins = append(ins, in)
	}
	if err := d.db.PutIncomings(ins); err != nil {
		return nil, err
	}
	return out, nil
}

// fromTeam reports whether rec comes from one of our own accounts.
func (d *Daemon) fromTeam(rec *message.Record) bool {
	for _, f := range rec.From {
		if _, ours := d.byAddr[f.Addr]; ours {
			return true
		}
	}
	return false
}

// incomingVerdict is ingestIncoming's classification, with a panic in the
// classifier turned into an error.
func (d *Daemon) incomingVerdict(a *account, rec *message.Record) (v classify.Verdict, in store.Incoming, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("classify: %v", p)
		}
	}()
	v = d.cls.Incoming(rec)
	in = store.Incoming{
		MessageID: rec.MessageID,
		Account:   a.cfg.Name,
		Kind:      v.Kind.String(),
		Date:      msgTime(rec),
		ThreadIDs: threadIDs(rec),
		Subject:   rec.Subject,
		Return:    v.ReturnDate,
		Failed:    v.FailedRecipients,
		Detail:    v.Diagnostic,
	}
	if len(rec.From) > 0 {
		in.From = rec.From[0].Addr
	}
	return v, in, nil
}

// applyGuarded applies a recorded verdict; a panic is a logged skip, as in
// ingestGuarded.
func (d *Daemon) applyGuarded(a *account, rec *message.Record, v classify.Verdict) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("skipping message: internal error while processing it", "account", a.cfg.Name, "mailbox", rec.Mailbox, "uid", rec.UID, "msgid", rec.MessageID, "panic", fmt.Sprint(p))
			err = nil
		}
	}()
	return d.applyIncoming(a, rec, v)
}
