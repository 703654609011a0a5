package gateway

import (
	"context"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// doorName names the door's hook in metrics and the access log; it never
// exits.
const doorName = "door"

// enterDoor runs first on a route whose plugins choose the clients'
// protocol (pluginsdk.ClientProtocol), so that every exit, including those
// of the plugins before the AI upstream, answers in that protocol.
type enterDoor struct{ d pluginsdk.ClientProtocol }

func (enterDoor) Name() string  { return doorName }
func (enterDoor) Priority() int { return 1 << 30 }

func (e enterDoor) Access(ctx context.Context, r *phases.Request) phases.Exit {
	e.d.EnterDoor(r)
	return phases.Exit{}
}

// withDoor prepends an enterDoor to ps when one of them chooses the
// protocol.
func withDoor(ps []phases.Plugin) []phases.Plugin {
	for _, p := range ps {
		if d, ok := p.(pluginsdk.ClientProtocol); ok {
			return append([]phases.Plugin{enterDoor{d}}, ps...)
		}
	}
	return ps
}
