package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Password returns the account's password from password_file or
// password_env. Errors name the account and the source, never the secret.
//
// password_file is read as given (relative to the working directory). When
// that file does not exist, the path is relative and $CREDENTIALS_DIRECTORY
// is set (systemd's LoadCredential=), the file is looked up there instead,
// so password_file = "ivan.pass" works with LoadCredential=ivan.pass:/etc/…
// One trailing newline (\n or \r\n) is removed; other whitespace is kept.
func (a *Account) Password() (string, error) {
	switch {
	case a.PasswordFile != "" && a.PasswordEnv != "":
		return "", fmt.Errorf("account %s: both password_file and password_env are set", a.Name)
	case a.PasswordEnv != "":
		v, ok := os.LookupEnv(a.PasswordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("account %s: password_env: environment variable %s is not set", a.Name, a.PasswordEnv)
		}
		return v, nil
	case a.PasswordFile != "":
		b, err := os.ReadFile(a.PasswordFile)
		if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(a.PasswordFile) {
			if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
				b, err = os.ReadFile(filepath.Join(dir, a.PasswordFile))
			}
		}
		if err != nil {
			// err names the path, which is not secret.
			return "", fmt.Errorf("account %s: password_file: %w", a.Name, err)
		}
		s := string(b)
		s = strings.TrimSuffix(s, "\n")
		s = strings.TrimSuffix(s, "\r")
		if s == "" {
			return "", fmt.Errorf("account %s: password_file %s is empty", a.Name, a.PasswordFile)
		}
		return s, nil
	}
	return "", fmt.Errorf("account %s: no password_file or password_env", a.Name)
}

// CheckPasswords reads every account's password and reports, as *Errors
// placed on the account's lines, those that cannot be read. Load does not
// do this itself (see Parse); `followupd check` run as the service user
// does.
func (c *Config) CheckPasswords() error {
	ps := newProblems(c.File, c.lines)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		if _, err := a.Password(); err != nil {
			key := indexPath("account", i) + ".password_file"
			if a.PasswordEnv != "" {
				key = indexPath("account", i) + ".password_env"
			}
			ps.addf(key, "%s", err)
		}
	}
	return ps.err()
}
