# followupd build and install.
#   make build                    ./followupd (static, version from git describe)
#   make test                     scripts/test
#   sudo make install             binary, systemd unit, example config
#   make install DESTDIR=/tmp/pkg PREFIX=/usr   staged install for packaging
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= /etc/systemd/system
DESTDIR    ?=
GO         ?= go
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build test vet install uninstall clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o followupd .

test:
	scripts/test

vet:
	$(GO) vet ./...

# The unit names /usr/local/bin/followupd; a different BINDIR is written
# into the installed copy. The config is installed only when absent, so a
# reinstall never overwrites the sysadmin's rules.
install: build
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/followupd
	install -m 0755 followupd $(DESTDIR)$(BINDIR)/followupd
	sed 's|/usr/local/bin/followupd|$(BINDIR)/followupd|g; s|/etc/followupd/|$(SYSCONFDIR)/followupd/|g' \
		packaging/followupd.service > $(DESTDIR)$(UNITDIR)/followupd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/followupd.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/followupd/followupd.toml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/followupd/followupd.toml"; \
	else \
		install -m 0644 config.example.toml $(DESTDIR)$(SYSCONFDIR)/followupd/followupd.toml; \
		echo "installed example config as $(DESTDIR)$(SYSCONFDIR)/followupd/followupd.toml: edit it"; \
	fi
	@echo "next: edit the config, then: followupd check -config $(SYSCONFDIR)/followupd/followupd.toml && systemctl daemon-reload && systemctl enable --now followupd"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/followupd $(DESTDIR)$(UNITDIR)/followupd.service
	@echo "left $(DESTDIR)$(SYSCONFDIR)/followupd and /var/lib/followupd in place"

clean:
	rm -f followupd
