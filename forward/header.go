package forward

import (
	"net"
	"net/http"
	"strings"
)

// clientIP is the IP of a RemoteAddr ("ip:port"), or "" if it has none.
func clientIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	if ip := net.ParseIP(remoteAddr); ip != nil {
		return remoteAddr
	}
	return ""
}

// setForwarded sets the X-Forwarded-* headers on out: the client's IP
// appended to X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host set.
func setForwarded(out http.Header, remoteAddr string, tls bool, host string) {
	if ip := clientIP(remoteAddr); ip != "" {
		if prior := out["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Set("X-Forwarded-For", ip)
	}
	proto := "http"
	if tls {
		proto = "https"
	}
	out.Set("X-Forwarded-Proto", proto)
	if host != "" {
		out.Set("X-Forwarded-Host", host)
	} else {
		out.Del("X-Forwarded-Host")
	}
}
