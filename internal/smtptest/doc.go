// Package smtptest is an in-process SMTP submission server for tests and for
// `followupd demo`. It records every accepted message, can require AUTH
// PLAIN, can speak implicit TLS or offer STARTTLS, and can be told to fail:
// a given recipient with a given reply (FailRecipient), the next n DATA
// commands (FailNext), to hold DATA replies until released (Hold), or to
// accept the next n messages and drop the connection instead of replying
// (DropNext): Hold and DropNext are how tests produce the "message written,
// reply never seen" case.
//
// It is built on github.com/emersion/go-smtp and modelled on that module's
// server_test.go backend. It is not a mail server: nothing is relayed, and a
// message exists only in Messages (and whatever OnMessage does with it).
//
// Invariants: Messages holds only messages whose DATA got a 2xx reply, in
// acceptance order; OnMessage runs after the message is recorded, outside the
// server's lock, once per accepted message.
package smtptest
