package proxy

import (
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 (and their
// legacy companions): they concern one connection and are never forwarded.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// endToEnd returns a copy of h without its hop-by-hop headers: those of
// hopHeaders and every header the Connection header names.
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		return http.Header{}
	}
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				out.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		out.Del(name)
	}
	return out
}

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
