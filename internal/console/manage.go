package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/deviceupdate/deviceupdate"
)

// A list page (test devices, sites, users, admins) renders its list
// with the outcome of a change above it.
type listPage struct {
	name, title string
	load        func(ctx context.Context) (any, error)
}

func (c *Console) showList(ec echo.Context, s *deviceupdate.Session, lp listPage, status int, p page) error {
	data, err := lp.load(ec.Request().Context())
	if err != nil {
		return c.fail(ec, s, err)
	}
	p.Title, p.Nav, p.Session, p.Data = lp.title, lp.name, s, data
	return c.render(ec, status, lp.name, p)
}

// change runs do and shows the list again with its outcome: the notice,
// or the refusal's message next to the form.
func (c *Console) change(ec echo.Context, s *deviceupdate.Session, lp listPage, notice string, do func(ctx context.Context) error) error {
	if err := do(ec.Request().Context()); err != nil {
		code := deviceupdate.ErrorCode(err)
		if code == deviceupdate.EINTERNAL {
			return c.fail(ec, s, err)
		}
		return c.showList(ec, s, lp, statusOf(code), page{Error: deviceupdate.ErrorMessage(err)})
	}
	return c.showList(ec, s, lp, http.StatusOK, page{Notice: notice})
}

// remove deletes the thing the form names with del and shows the list.
func (c *Console) remove(ec echo.Context, s *deviceupdate.Session, lp listPage, noun string, del func(ctx context.Context, name, actor string) error) error {
	name := ec.FormValue("name")
	return c.change(ec, s, lp, "Removed "+noun+" "+name+".", func(ctx context.Context) error {
		return del(ctx, name, s.Admin.Name)
	})
}

func (c *Console) testDevicesPage() listPage {
	return listPage{name: "testdevices", title: "Test devices", load: func(ctx context.Context) (any, error) {
		return c.cfg.TestDevices.TestDevices(ctx)
	}}
}

func (c *Console) handleTestDevices(ec echo.Context, s *deviceupdate.Session) error {
	return c.showList(ec, s, c.testDevicesPage(), http.StatusOK, page{})
}

func (c *Console) handleAddTestDevice(ec echo.Context, s *deviceupdate.Session) error {
	d := deviceupdate.TestDevice{Name: strings.TrimSpace(ec.FormValue("name")), Scope: strings.TrimSpace(ec.FormValue("scope"))}
	id := strings.TrimSpace(ec.FormValue("id"))
	if _, err := deviceupdate.NormalizeMAC(id); err == nil {
		d.MAC = id
	} else {
		d.Serial = id
	}
	return c.change(ec, s, c.testDevicesPage(), "Added test device "+d.Name+".", func(ctx context.Context) error {
		_, err := c.cfg.TestDevices.AddTestDevice(ctx, d, s.Admin.Name)
		return err
	})
}

func (c *Console) handleRemoveTestDevice(ec echo.Context, s *deviceupdate.Session) error {
	return c.remove(ec, s, c.testDevicesPage(), "test device", c.cfg.TestDevices.RemoveTestDevice)
}

func (c *Console) sitesPage() listPage {
	return listPage{name: "sites", title: "Sites", load: func(ctx context.Context) (any, error) {
		return c.cfg.Sites.Sites(ctx)
	}}
}

func (c *Console) handleSites(ec echo.Context, s *deviceupdate.Session) error {
	return c.showList(ec, s, c.sitesPage(), http.StatusOK, page{})
}

// handlePutSite adds a site or replaces its subnets (given one a line,
// or separated by commas or spaces).
func (c *Console) handlePutSite(ec echo.Context, s *deviceupdate.Session) error {
	name := strings.TrimSpace(ec.FormValue("name"))
	return c.change(ec, s, c.sitesPage(), "Saved site "+name+".", func(ctx context.Context) error {
		subnets, err := deviceupdate.ParseSubnets(strings.FieldsFunc(ec.FormValue("subnets"), func(r rune) bool {
			return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
		}))
		if err != nil {
			return err
		}
		_, err = c.cfg.Sites.PutSite(ctx, deviceupdate.Site{Name: name, Subnets: subnets}, s.Admin.Name)
		return err
	})
}

func (c *Console) handleRemoveSite(ec echo.Context, s *deviceupdate.Session) error {
	return c.remove(ec, s, c.sitesPage(), "site", c.cfg.Sites.RemoveSite)
}

func (c *Console) usersPage() listPage {
	return listPage{name: "users", title: "Users", load: func(ctx context.Context) (any, error) {
		return c.cfg.Users.Users(ctx)
	}}
}

func (c *Console) handleUsers(ec echo.Context, s *deviceupdate.Session) error {
	return c.showList(ec, s, c.usersPage(), http.StatusOK, page{})
}

func (c *Console) handleAddUser(ec echo.Context, s *deviceupdate.Session) error {
	name := strings.TrimSpace(ec.FormValue("name"))
	return c.change(ec, s, c.usersPage(), "Added user "+name+".", func(ctx context.Context) error {
		_, err := c.cfg.Users.AddUser(ctx, name, ec.FormValue("password"), s.Admin.Name)
		return err
	})
}

func (c *Console) handleRemoveUser(ec echo.Context, s *deviceupdate.Session) error {
	return c.remove(ec, s, c.usersPage(), "user", c.cfg.Users.RemoveUser)
}

type adminsData struct {
	Admins []deviceupdate.Admin
	Roles  []deviceupdate.Role
}

func (c *Console) adminsPage() listPage {
	return listPage{name: "admins", title: "Admins", load: func(ctx context.Context) (any, error) {
		admins, err := c.cfg.Admins.Admins(ctx)
		return adminsData{Admins: admins, Roles: deviceupdate.Roles}, err
	}}
}

func (c *Console) handleAdmins(ec echo.Context, s *deviceupdate.Session) error {
	return c.showList(ec, s, c.adminsPage(), http.StatusOK, page{})
}

func (c *Console) handleAddAdmin(ec echo.Context, s *deviceupdate.Session) error {
	name := strings.TrimSpace(ec.FormValue("name"))
	return c.change(ec, s, c.adminsPage(), "Added admin "+name+".", func(ctx context.Context) error {
		role, err := deviceupdate.ParseRole(ec.FormValue("role"))
		if err != nil {
			return err
		}
		_, err = c.cfg.Admins.AddAdmin(ctx, name, role, ec.FormValue("password"), s.Admin.Name)
		return err
	})
}

func (c *Console) handleRemoveAdmin(ec echo.Context, s *deviceupdate.Session) error {
	return c.remove(ec, s, c.adminsPage(), "admin", func(ctx context.Context, name, actor string) error {
		if name == s.Admin.Name {
			return deviceupdate.Errorf(deviceupdate.ECONFLICT, "you cannot remove yourself; ask another admin")
		}
		return c.cfg.Admins.RemoveAdmin(ctx, name, actor)
	})
}
