package main

import (
	"context"
	"time"

	"github.com/deviceupdate/deviceupdate"
	"github.com/deviceupdate/deviceupdate/internal/admin"
	"github.com/deviceupdate/deviceupdate/internal/certs"
	"github.com/deviceupdate/deviceupdate/internal/console"
	"github.com/deviceupdate/deviceupdate/internal/importer"
)

// consoleAdmins is what the console needs of the admins: the list and
// changes, and the sessions of those who sign in.
type consoleAdmins interface {
	deviceupdate.AdminService
	deviceupdate.SessionService
}

// newConsole builds the web console over the services the admin API
// calls; Run mounts it on the HTTPS handler only.
func (m *Main) newConsole(admins consoleAdmins, svc *admin.Service, im *importer.Importer) (*console.Console, error) {
	c := m.Config
	return console.New(console.Config{
		Logger: m.Logger, Sessions: admins, Admins: admins,
		Rules: svc, Rollouts: svc, Packages: im, Devices: svc, DeviceConfig: svc, Logs: m.logs, TestDevices: svc, Sites: svc,
		Config: svc, Users: svc, Audit: svc, MaxPackageSize: importer.DefaultMaxPackageSize,
		Health: console.Health{
			DataDir: c.Data,
			CertExpiry: func() (time.Time, error) {
				cert, err := certs.ReadServerCert(c.Certs)
				if err != nil {
					return time.Time{}, err
				}
				return cert.NotAfter, nil
			},
			LastImport: func(context.Context) (time.Time, error) { return m.lastImport() },
			AuditBroken: func() error {
				if b := m.trail.Broken(); b != nil {
					return b
				}
				return nil
			},
		},
	})
}

// lastImport returns when the newest stored update was imported.
func (m *Main) lastImport() (time.Time, error) {
	updates, err := m.db.Updates()
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, u := range updates {
		if u.ImportedAt.After(last) {
			last = u.ImportedAt
		}
	}
	return last, nil
}
