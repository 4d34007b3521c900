// Package mailtest runs a private, throwaway mail stack for interop tests:
// a Dovecot (IMAP + LMTP, mail stored in Maildir) and a Postfix (an MX-style
// SMTP port, a submission port with AUTH against Dovecot, optional SMTPS), all
// on 127.0.0.1, all under one temporary directory, started and stopped by the
// test that asked for them.
//
// Mail flow:
//
//	Send ──▶ Postfix MX ─┐
//	                     ├─▶ policy server (SetPolicy) ─▶ lmtp ─▶ Dovecot ◀── IMAP (WaitDelivered, Append, the daemon)
//	daemon ─▶ submission ┘
//
// Recipients in Options.Domains are delivered to Dovecot over LMTP; an
// unknown user in such a domain is accepted by Postfix and bounced by
// Dovecot's LMTP (so a DSN reaches the sender, as with a real remote server).
// Mail for any other domain is bounced by Postfix's error transport; the MX
// port refuses to relay for other domains at RCPT.
//
// Use:
//
//	s := mailtest.Start(t, mailtest.Options{Users: []mailtest.User{
//		{Name: "ivan@seller.test", Password: "pw"}, {Name: "olga@buyer.test", Password: "pw"}}})
//	// the daemon: IMAP s.IMAPAddr, SMTP submission s.SubmissionAddr, AUTH as ivan
//	s.Append("ivan@seller.test", "Sent", offer, `\Seen`)        // ivan's mail client saved an offer
//	s.Send(ctx, "olga@buyer.test", []string{"ivan@seller.test"}, reply) // olga answers from outside
//	msgs, err := s.WaitDelivered(ctx, "olga@buyer.test", "INBOX", 1)    // the reminder arrived
//	s.SetPolicy("olga@buyer.test", "451 4.7.1 try later")               // the next RCPT is deferred
//	p := mailtest.NewProxy(t, s.IMAPAddr)                               // point the daemon at p.Addr(), then p.Cut()
//
// Invariants:
//   - Start stops exactly what it started: Dovecot by its own process group
//     (it runs in the foreground, in a group of its own), Postfix with
//     `postfix -c DIR stop` and, if that fails, a signal to the pid in its
//     master.pid. Nothing system-wide is started, read or changed; no
//     /etc/postfix or /etc/dovecot file is used.
//   - Postfix retries deferred mail only when the test calls FlushQueue (the
//     queue run and backoff times stay at Postfix's defaults of minutes), so a
//     test decides when deferred mail arrives.
//   - The servers need root (Dovecot drops to uid 5000 for mail, Postfix to
//     user postfix). Without root or without the binaries a test is skipped,
//     except under CI=true, where it fails: CI must run the real stack.
//
// The temporary directory is mode 0755 (0700 would lock out both servers'
// unprivileged workers) and is removed at cleanup, unless the test failed
// and MAILTEST_KEEP=1 is set.
package mailtest
