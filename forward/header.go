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
// The three values share one backing array.
func setForwarded(out http.Header, remoteAddr string, tls bool, host string) {
	vals := make([]string, 3)
	if ip := clientIP(remoteAddr); ip != "" {
		if prior := out["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		out["X-Forwarded-For"] = vals[0:1:1]
	}
	vals[1] = "http"
	if tls {
		vals[1] = "https"
	}
	out["X-Forwarded-Proto"] = vals[1:2:2]
	if host != "" {
		vals[2] = host
		out["X-Forwarded-Host"] = vals[2:3:3]
	} else {
		delete(out, "X-Forwarded-Host")
	}
}
