// Package deviceupdate holds the domain of the deviceupdate service: the
// types and rules that describe firmware updates for IP phones, independent
// of how they are stored (internal/store) or served (internal/handler).
//
// It imports neither the web framework nor the database. Packages that talk
// to the outside world implement or consume what is declared here, and the
// binary in cmd/deviceupdate wires them together.
//
// One file per entity, each with its type, its rules and the service that
// manages it:
//
//	update.go         Update (as a package declares it), StoredUpdate (as imported), their files and folder; name rules
//	package.go        PackageService: importing packages, and what an import did (ImportResult)
//	file.go           FileService: clearing the stored files no rule needs (ClearResult)
//	chunklist.go      ChunkList: the hashes of a file's pieces, which peers check (SPEC §9)
//	version.go        Version
//	rule.go           Rule, RuleKey, the lifecycle (approve, reset, restore), RuleService
//	poll.go           PollRequest, the offer decision (Decide), PollAnswer, PollService
//	device.go         Device as the inventory saw it, DeviceID, DeviceFilter, DeviceService
//	devicesetting.go  the settings a device may override, DeviceConfigService
//	testdevice.go     TestDevice, TestDeviceService
//	devicelog.go      DeviceLog, the upload rules (LogSettings), LogService
//	site.go           Site, SiteMap, SiteService
//	setting.go        Setting, Settings, ResolveConfig, ConfigService
//	dnsname.go        ValidateDNSName
//	user.go           User, UserService
//	admin.go          Admin, Role, AdminToken, AdminService
//	session.go        Session (the web console's), SessionService
//	audit.go          AuditEntry, AuditFilter, AuditService
//	backup.go         Backup, BackupService
//	page.go           Page, the opaque cursor of long lists
//	error.go          Error and its codes
//	server.go         ServerInfo
//	build.go          BuildVersion
package deviceupdate
