// Package send renders a reminder step's template, builds the RFC 5322
// message and submits it over SMTP from the sender's own address, in the
// tracked message's thread. It does not decide when or whether a step goes
// out: the daemon does, with the store's ledger. It builds, submits and
// reports the outcome precisely.
//
// Threading: a reminder carries In-Reply-To <tracked Message-ID> and
// References = the tracked message's References followed by its Message-ID,
// so every client files it in the same conversation. Its own Message-ID comes
// from message.NewOwnMessageID and it carries the message.OwnHeader header, so
// when it syncs back from Sent it is recognised as ours (DESIGN invariant 3).
//
// Bytes: Build returns the exact bytes Submit sends (written as-is through
// go-mail's SMTP client, not re-encoded), and the same bytes are what the
// daemon APPENDs to Sent or Drafts, so the copy in Sent is the message the
// recipient got.
//
// Outcomes: Submit returns nil once the server answered 2xx to the end of
// DATA, or an *Error. How failures are sorted:
//
//   - 5xx to RCPT TO, to DATA or to the message content: Permanent. The
//     follow-up becomes failed with the server's code and text.
//   - 4xx anywhere: not permanent; the daemon retries with backoff.
//   - Dial, TLS, EHLO and AUTH failures, whatever their code (a wrong
//     password answers 535): not permanent. The follow-up must not fail
//     because the server was down or the account is misconfigured; the
//     daemon retries and logs loudly. The same holds for a refused MAIL FROM:
//     it is the account's problem, not the follow-up's, and it would repeat
//     for every follow-up of the account. RFC 4954 §6 auth replies (530, 534,
//     535, 538) are never permanent at any stage.
//   - Context cancellation and any failure not listed: not permanent.
//   - Error.MaybeSent is set when the whole message was written but no reply
//     to the end of DATA was read (connection lost, timeout, cancellation):
//     the server may have accepted it. Retrying blindly could send the step
//     twice; the daemon must first look for the Message-ID in Sent (or hold
//     the follow-up as uncertain).
//
// Own mail: BuildMessage and SubmitMessage carry followupd's other mail
// (the daily summary, approval-mode notices): not threaded, own Message-ID
// and OwnHeader, Auto-Submitted: auto-generated, text plus optional HTML.
//
// Pacing: Pacer spreads a morning of due reminders so an account never sends
// more than its max_per_hour in any hour, with jitter between sends.
package send
