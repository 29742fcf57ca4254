package console

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// devicePage is how many devices a page of the list shows.
const devicePage = 50

type devicesData struct {
	Filter  deviceQuery
	Devices []deviceupdate.Device
	Sites   []string
	Next    string // the URL of the next page, "" at the end
}

// deviceQuery is the device list's filters as the URL carries them.
type deviceQuery struct {
	Model, Key, Version, NotVersion, Site, Seen, NotSeen, Q, Cursor string
}

func (q deviceQuery) url(cursor string) string {
	v := url.Values{}
	for k, x := range map[string]string{"model": q.Model, "key": q.Key, "version": q.Version, "notversion": q.NotVersion, "site": q.Site, "seen": q.Seen, "notseen": q.NotSeen, "q": q.Q, "cursor": cursor} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return "/devices?" + v.Encode()
}

// filter reads the query into the inventory's filter.
func (q deviceQuery) filter(now time.Time) (deviceupdate.DeviceFilter, error) {
	f := deviceupdate.DeviceFilter{Model: q.Model, Site: q.Site, Search: q.Q, Page: deviceupdate.Page{Cursor: q.Cursor, Limit: devicePage}}
	// A MAC address is searched for in the inventory's spelling, however
	// it was typed (00:04:f2:aa:bb:cc, 0004f2aabbcc).
	if mac, err := deviceupdate.NormalizeMAC(q.Q); err == nil {
		f.Search = mac
	}
	var err error
	if q.Key != "" {
		if f.Key, err = deviceupdate.ParseRuleKey(q.Key); err != nil {
			return f, err
		}
	}
	for _, v := range []struct {
		s   string
		dst *deviceupdate.Version
	}{{q.Version, &f.Version}, {q.NotVersion, &f.NotVersion}} {
		if v.s != "" {
			if *v.dst, err = deviceupdate.ParseVersion(v.s); err != nil {
				return f, err
			}
		}
	}
	for _, t := range []struct {
		age string
		dst *time.Time
	}{{q.Seen, &f.Since}, {q.NotSeen, &f.Before}} {
		if t.age != "" {
			age, err := deviceupdate.ParseAge(t.age)
			if err != nil {
				return f, err
			}
			*t.dst = now.Add(-age)
		}
	}
	return f, f.Validate()
}

func (c *Console) handleDevices(ec echo.Context, s *deviceupdate.Session) error {
	ctx := ec.Request().Context()
	q := deviceQuery{Model: ec.QueryParam("model"), Key: ec.QueryParam("key"), Version: ec.QueryParam("version"), NotVersion: ec.QueryParam("notversion"), Site: ec.QueryParam("site"),
		Seen: ec.QueryParam("seen"), NotSeen: ec.QueryParam("notseen"), Q: strings.TrimSpace(ec.QueryParam("q")), Cursor: ec.QueryParam("cursor")}
	d := devicesData{Filter: q}
	if c.cfg.Sites != nil {
		sites, err := c.cfg.Sites.Sites(ctx)
		if err != nil {
			return c.fail(ec, s, err)
		}
		for _, site := range sites {
			d.Sites = append(d.Sites, site.Name)
		}
	}
	f, err := q.filter(c.now())
	if err == nil && q.Site != "" && !slices.ContainsFunc(d.Sites, func(n string) bool { return strings.EqualFold(n, q.Site) }) {
		err = deviceupdate.Errorf(deviceupdate.ENOTFOUND, "no site %q; the sites are on the Sites page", truncate(q.Site, 64))
	}
	var list *deviceupdate.DeviceList
	if err == nil {
		list, err = c.cfg.Devices.Devices(ctx, f)
	}
	if err != nil {
		if deviceupdate.ErrorCode(err) == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		return c.render(ec, statusOf(deviceupdate.ErrorCode(err)), "devices", page{Title: "Devices", Nav: "devices", Session: s, Error: deviceupdate.ErrorMessage(err), Data: d})
	}
	d.Devices = list.Devices
	if list.Next != "" {
		d.Next = q.url(list.Next)
	}
	return c.render(ec, http.StatusOK, "devices", page{Title: "Devices", Nav: "devices", Session: s, Data: d})
}

type deviceData struct {
	Device   deviceupdate.Device
	Settings map[string]string
	Sharing  string // the device's own PeerFirmwareSharing: "", "true" or "false"
	Logs     []deviceupdate.DeviceLog
	MoreLogs bool
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
	dev, err := c.cfg.Devices.Device(ctx, id)
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
