package airatelimiting

import (
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/ratelimit"
)

// The process's stores, shared by every plugin built by New: one Local
// store, and one Redis store per connection config, each with a keeper per
// lease. They live as long as the process, so a reload keeps counters,
// connections and the renewal of requests in flight.
var shared struct {
	mu      sync.Mutex
	local   *ratelimit.Local
	redis   map[Redis]*ratelimit.Redis
	keepers map[keeperKey]*ratelimit.Keeper
}

type keeperKey struct {
	store ratelimit.Store
	lease time.Duration
}

type sharedStores struct {
	keeper *ratelimit.Keeper
	local  bool
}

// sharedStore returns the keeper of cfg's store and lease.
func sharedStore(cfg Config, log zerolog.Logger) (sharedStores, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var store ratelimit.Store
	if cfg.Policy == PolicyRedis {
		rs, ok := shared.redis[cfg.Redis]
		if !ok {
			var err error
			rs, err = ratelimit.NewRedis(ratelimit.RedisConfig{
				Address: cfg.Redis.Address, Username: cfg.Redis.Username, Password: cfg.Redis.Password,
				DB: cfg.Redis.DB, Timeout: cfg.Redis.Timeout, KeyPrefix: cfg.Redis.KeyPrefix,
			})
			if err != nil {
				return sharedStores{}, err
			}
			if shared.redis == nil {
				shared.redis = map[Redis]*ratelimit.Redis{}
			}
			shared.redis[cfg.Redis] = rs
		}
		store = rs
	} else {
		if shared.local == nil {
			shared.local = ratelimit.NewLocal(ratelimit.LocalOptions{})
		}
		store = shared.local
	}
	k := keeperKey{store, cfg.Lease}
	keeper, ok := shared.keepers[k]
	if !ok {
		var err error
		keeper, err = newKeeper(store, cfg.Lease, log)
		if err != nil {
			return sharedStores{}, err
		}
		if shared.keepers == nil {
			shared.keepers = map[keeperKey]*ratelimit.Keeper{}
		}
		shared.keepers[k] = keeper
	}
	return sharedStores{keeper: keeper, local: cfg.Policy != PolicyRedis}, nil
}

// newKeeper starts a keeper that logs failed renewals and lost
// reservations.
func newKeeper(store ratelimit.Store, lease time.Duration, log zerolog.Logger) (*ratelimit.Keeper, error) {
	return ratelimit.NewKeeper(store, lease, ratelimit.KeeperEvents{
		RenewFailed: func(err error) {
			log.Warn().Err(err).Msg("rate-limit renewal failed; leases of requests in flight may pass")
		},
		Lost: func(r *ratelimit.Reservation) {
			log.Warn().Str("reservation", r.ID()).Msg("a rate-limit reservation expired before its request ended")
		},
	})
}
