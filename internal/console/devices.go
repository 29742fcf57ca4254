package console

import (
	"context"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// Bounds of the device list: a page shows about devicePage devices; a
// filter the inventory cannot apply itself (site, search) reads at most
// maxDeviceScan records per page shown.
const (
	devicePage    = 50
	maxDeviceScan = 20000
	maxQueryLen   = 64
)

type devicesData struct {
	Filter  deviceQuery
	Devices []deviceupdate.Device
	Sites   []string
	Next    string // the URL of the next page, "" at the end
	Scanned int
	Partial bool // the scan stopped at maxDeviceScan: more may match
}

// deviceQuery is the device list's filters as the URL carries them.
type deviceQuery struct {
	Model, Version, Site, Seen, Q, Cursor string
}

func (q deviceQuery) url(cursor string) string {
	v := url.Values{}
	for k, x := range map[string]string{"model": q.Model, "version": q.Version, "site": q.Site, "seen": q.Seen, "q": q.Q, "cursor": cursor} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return "/devices?" + v.Encode()
}

func (c *Console) handleDevices(ec echo.Context, s *deviceupdate.Session) error {
	ctx := ec.Request().Context()
	q := deviceQuery{Model: ec.QueryParam("model"), Version: ec.QueryParam("version"), Site: ec.QueryParam("site"),
		Seen: ec.QueryParam("seen"), Q: strings.TrimSpace(ec.QueryParam("q")), Cursor: ec.QueryParam("cursor")}
	d := devicesData{Filter: q}
	fail := func(err error) error {
		return c.render(ec, statusOf(deviceupdate.ErrorCode(err)), "devices", page{Title: "Devices", Nav: "devices", Session: s, Error: deviceupdate.ErrorMessage(err), Data: d})
	}
	f := deviceupdate.DeviceFilter{Model: q.Model, Page: deviceupdate.Page{Cursor: q.Cursor, Limit: devicePage}}
	if len(q.Model) > maxQueryLen || len(q.Q) > maxQueryLen {
		return fail(deviceupdate.Errorf(deviceupdate.EINVALID, "a filter is longer than %d characters", maxQueryLen))
	}
	if q.Version != "" {
		v, err := deviceupdate.ParseVersion(q.Version)
		if err != nil {
			return fail(err)
		}
		f.Version = v
	}
	if q.Seen != "" {
		age, err := deviceupdate.ParseAge(q.Seen)
		if err != nil {
			return fail(err)
		}
		f.Since = c.now().Add(-age)
	}
	var subnets []netip.Prefix
	if c.cfg.Sites != nil {
		sites, err := c.cfg.Sites.Sites(ctx)
		if err != nil {
			return c.fail(ec, s, err)
		}
		found := false
		for _, site := range sites {
			d.Sites = append(d.Sites, site.Name)
			if strings.EqualFold(site.Name, q.Site) {
				subnets, found = site.Subnets, true
			}
		}
		if q.Site != "" && !found {
			return fail(deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no site %q", truncate(q.Site, maxQueryLen)))
		}
	}
	// A whole MAC address or serial number is looked up, not searched.
	if id, err := deviceupdate.DeviceID(q.Q); err == nil && q.Cursor == "" && (strings.ContainsAny(q.Q, "-:") || len(q.Q) >= 8) {
		dev, err := c.findDevice(ctx, id)
		if err == nil && f.Match(dev) && inSubnets(dev.Remote, subnets) {
			d.Devices = []deviceupdate.Device{dev}
			return c.render(ec, http.StatusOK, "devices", page{Title: "Devices", Nav: "devices", Session: s, Data: d})
		}
		if err != nil && deviceupdate.ErrorCode(err) != deviceupdate.ENOTFOUND {
			return fail(err)
		}
	}
	match := func(dev deviceupdate.Device) bool {
		return inSubnets(dev.Remote, subnets) && matchesSearch(dev, q.Q)
	}
	for {
		list, err := c.cfg.Devices.Devices(ctx, f)
		if err != nil {
			return fail(err)
		}
		d.Scanned += len(list.Devices)
		for _, dev := range list.Devices {
			if q.Site == "" && q.Q == "" || match(dev) {
				d.Devices = append(d.Devices, dev)
			}
		}
		if list.Next == "" {
			break
		}
		f.Cursor = list.Next
		if len(d.Devices) >= devicePage || d.Scanned >= maxDeviceScan {
			d.Next = q.url(list.Next)
			d.Partial = len(d.Devices) < devicePage
			break
		}
	}
	return c.render(ec, http.StatusOK, "devices", page{Title: "Devices", Nav: "devices", Session: s, Data: d})
}

// inSubnets reports whether remote lies in one of subnets (any address
// when there are none).
func inSubnets(remote string, subnets []netip.Prefix) bool {
	if subnets == nil {
		return true
	}
	a, err := netip.ParseAddr(remote)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range subnets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// matchesSearch reports whether the device's MAC, serial or user
// contains q, in any case; a MAC is matched in any of its spellings.
func matchesSearch(d deviceupdate.Device, q string) bool {
	if q == "" {
		return true
	}
	if id, err := deviceupdate.NormalizeMAC(q); err == nil && id == d.MAC {
		return true
	}
	q = strings.ToLower(q)
	norm := strings.NewReplacer(":", "", "-", "")
	for _, f := range []string{d.ID, d.MAC, d.Serial, d.UserID} {
		if f != "" && (strings.Contains(strings.ToLower(f), q) || strings.Contains(strings.ToLower(norm.Replace(f)), norm.Replace(q))) {
			return true
		}
	}
	return false
}

type deviceData struct {
	Device   deviceupdate.Device
	Settings map[string]string
	Sharing  string // the device's own PeerFirmwareSharing: "", "true" or "false"
	Logs     []deviceupdate.DeviceLog
	MoreLogs bool
}

// findDevice reads one device's record: the page of one device that
// starts just before its ID in the inventory's order.
func (c *Console) findDevice(ctx context.Context, id string) (deviceupdate.Device, error) {
	f := deviceupdate.DeviceFilter{Page: deviceupdate.Page{Limit: 1}}
	if before := idBefore(id); before != "" {
		f.Cursor = deviceupdate.EncodeCursor(before)
	}
	list, err := c.cfg.Devices.Devices(ctx, f)
	if err != nil {
		return deviceupdate.Device{}, err
	}
	if len(list.Devices) == 0 || list.Devices[0].ID != id {
		return deviceupdate.Device{}, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no device %s in the inventory", id)
	}
	return list.Devices[0], nil
}

// idBefore returns a string that sorts just before id: nothing a device
// ID can be (letters, digits, '-', '_') lies between them.
func idBefore(id string) string {
	if id == "" {
		return ""
	}
	b := []byte(id)
	last := len(b) - 1
	if b[last] == 0 {
		return string(b[:last])
	}
	b[last]--
	return string(b) + "\x7f"
}

func (c *Console) handleDevice(ec echo.Context, s *deviceupdate.Session) error {
	ctx := ec.Request().Context()
	id, err := deviceupdate.DeviceID(ec.Param("id"))
	if err != nil {
		return c.fail(ec, s, err)
	}
	return c.renderDevice(ec, s, ctx, id, http.StatusOK, page{})
}

func (c *Console) renderDevice(ec echo.Context, s *deviceupdate.Session, ctx context.Context, id string, status int, p page) error {
	dev, err := c.findDevice(ctx, id)
	if err != nil {
		return c.fail(ec, s, err)
	}
	d := deviceData{Device: dev}
	if c.cfg.DeviceConfig != nil {
		cfg, err := c.cfg.DeviceConfig.DeviceConfig(ctx, id)
		if err != nil {
			return c.fail(ec, s, err)
		}
		d.Settings, d.Sharing = cfg.Settings, cfg.Settings["PeerFirmwareSharing"]
	}
	if c.cfg.Logs != nil {
		logs, err := c.cfg.Logs.Logs(ctx, deviceupdate.LogFilter{Device: id, Page: deviceupdate.Page{Limit: 100}})
		if err != nil {
			return c.fail(ec, s, err)
		}
		d.Logs, d.MoreLogs = logs.Logs, logs.Next != ""
	}
	p.Title, p.Nav, p.Session, p.Data = "Device "+id, "devices", s, d
	return c.render(ec, status, "device", p)
}

// handleDeviceConfig sets or clears the device's own PeerFirmwareSharing.
func (c *Console) handleDeviceConfig(ec echo.Context, s *deviceupdate.Session) error {
	ctx := ec.Request().Context()
	id, err := deviceupdate.DeviceID(ec.Param("id"))
	if err != nil {
		return c.fail(ec, s, err)
	}
	if c.cfg.DeviceConfig == nil {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.ENOTIMPLEMENTED, "device settings are not available"))
	}
	v := ec.FormValue("PeerFirmwareSharing")
	if v != "" && v != "true" && v != "false" {
		return c.renderDevice(ec, s, ctx, id, http.StatusBadRequest, page{Error: "PeerFirmwareSharing: choose the site's setting, on or off."})
	}
	if _, err := c.cfg.DeviceConfig.SetDeviceConfig(ctx, id, map[string]string{"PeerFirmwareSharing": v}, s.Admin.Name); err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		return c.renderDevice(ec, s, ctx, id, statusOf(deviceupdate.ErrorCode(err)), page{Error: deviceupdate.ErrorMessage(err)})
	}
	return c.renderDevice(ec, s, ctx, id, http.StatusOK, page{Notice: "Saved the device's settings."})
}

// handleLogDownload sends one of the device's uploaded logs as a file.
func (c *Console) handleLogDownload(ec echo.Context, s *deviceupdate.Session) error {
	if c.cfg.Logs == nil {
		return c.fail(ec, s, deviceupdate.Errorf(deviceupdate.ENOTFOUND, "device logs are not available"))
	}
	id, err := deviceupdate.DeviceID(ec.Param("id"))
	if err != nil {
		return c.fail(ec, s, err)
	}
	f, l, err := c.cfg.Logs.OpenLog(ec.Request().Context(), ec.Param("type"), id, ec.Param("name"))
	if err != nil {
		return c.fail(ec, s, err)
	}
	defer f.Close()
	h := ec.Response().Header()
	h.Set(echo.HeaderContentType, "application/octet-stream")
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": l.Name}))
	http.ServeContent(ec.Response(), ec.Request(), l.Name, l.Modified, f)
	return nil
}
