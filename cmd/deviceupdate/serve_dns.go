package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/deviceupdate/deviceupdate/internal/discovery"
	"github.com/deviceupdate/deviceupdate/internal/handler"
)

// listenerDNS names the discovery responder among the listeners.
const listenerDNS = "dns"

// validateDNS checks --dns and --dns-answer.
func (c *Config) validateDNS() error {
	if c.DNS == "" {
		if c.DNSAnswer != "" {
			return usageError{errors.New("--dns-answer is set but --dns is not; add --dns ADDR to run the discovery responder, or drop --dns-answer")}
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(c.DNS); err != nil || port == "" {
		return fmt.Errorf("--dns %q is not a listen address; write host:port, e.g. 10.0.0.5:53", c.DNS)
	}
	if c.Domain == "" {
		return usageError{fmt.Errorf("--dns needs --domain: the responder answers %s.<domain>; add e.g. --domain contoso.com", discovery.Label)}
	}
	if _, err := parseAnswers(c.DNSAnswer); err != nil {
		return err
	}
	return nil
}

// parseAnswers reads --dns-answer: IP addresses separated by commas.
func parseAnswers(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.IsUnspecified() || a.Zone() != "" {
			return nil, fmt.Errorf("--dns-answer: %q is not an IP address phones can reach; write e.g. 10.0.0.5,2001:db8::5", f)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// dnsAnswers returns the addresses ucupdates-r2.<domain> resolves to:
// --dns-answer, else the HTTPS listener's address when it names one, else
// every address of this host's interfaces but loopback and link-local ones.
func dnsAnswers(spec string, https net.Addr, ifaceAddrs func() ([]net.Addr, error)) ([]netip.Addr, error) {
	answers, err := parseAnswers(spec)
	if err != nil || len(answers) > 0 {
		return answers, err
	}
	if tcp, ok := https.(*net.TCPAddr); ok && tcp != nil && !tcp.IP.IsUnspecified() {
		if a, ok := netip.AddrFromSlice(tcp.IP); ok {
			return []netip.Addr{a.Unmap()}, nil
		}
	}
	addrs, err := ifaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this host's addresses for the DNS answer: %w; name them with --dns-answer", err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() || slices.Contains(answers, ip) {
			continue
		}
		answers = append(answers, ip)
	}
	if len(answers) == 0 {
		return nil, errors.New("the DNS responder has no address to answer with: --https listens on every address and this host has none but loopback; name them with --dns-answer")
	}
	return answers, nil
}

// listenDNS binds the discovery responder's UDP and TCP sockets, when
// --dns is set.
func (m *Main) listenDNS() error {
	addr := m.Config.DNS
	if addr == "" {
		return nil
	}
	s, err := discovery.Listen(addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			_, port, _ := net.SplitHostPort(addr)
			return fmt.Errorf("dns listener %s: address already in use (UDP or TCP); stop what holds it (ss -ltunp 'sport = :%s'; systemd-resolved holds 127.0.0.53:53, so give --dns a specific address) or choose another with --dns", addr, port)
		}
		return listenError(listenerDNS, addr, "--dns", err)
	}
	m.dns = s
	return nil
}

// startDNS serves the discovery responder on the sockets listenDNS bound.
func (m *Main) startDNS(reg prometheus.Registerer) error {
	if m.dns == nil {
		return nil
	}
	answers, err := dnsAnswers(m.Config.DNSAnswer, m.Addr(handler.ListenerHTTPS), net.InterfaceAddrs)
	if err != nil {
		return err
	}
	h, err := discovery.NewHandler(discovery.Config{
		Domain:     m.Config.Domain,
		Addrs:      answers,
		Registerer: reg,
		Logger:     m.Logger.With(zap.String("listener", listenerDNS)),
	})
	if err != nil {
		return err
	}
	if err := m.dns.Start(h, m.failed); err != nil {
		return err
	}
	strs := make([]string, len(answers))
	for i, a := range answers {
		strs[i] = a.String()
	}
	m.Logger.Info("listening", zap.String("listener", listenerDNS), zap.String("addr", m.dns.Addr()),
		zap.String("name", h.Name()), zap.Strings("answers", strs))
	if dnsIP, ok := m.dns.UDPAddr().(*net.UDPAddr); ok && !dnsIP.IP.IsLoopback() && !slices.ContainsFunc(answers, func(a netip.Addr) bool { return !a.IsLoopback() }) {
		m.Logger.Warn("the dns responder answers loopback addresses only; phones cannot reach them: set --dns-answer",
			zap.Strings("answers", strs))
	}
	return nil
}

// stopDNS stops the discovery responder, or releases its sockets if it
// never started.
func (m *Main) stopDNS(ctx context.Context) error {
	if m.dns == nil {
		return nil
	}
	err := m.dns.Shutdown(ctx)
	m.dns = nil
	if err != nil {
		return fmt.Errorf("stop dns listener: %w", err)
	}
	return nil
}

// listenerAddrs returns the bound address of every listener, by name, for
// the admin API's server information (doctor reads it).
func (m *Main) listenerAddrs() map[string]string {
	out := map[string]string{}
	for _, l := range m.servers {
		out[l.name] = l.ln.Addr().String()
	}
	if m.dns != nil {
		out[listenerDNS] = m.dns.Addr()
	}
	return out
}
