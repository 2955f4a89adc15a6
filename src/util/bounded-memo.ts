// A memo with a hard size bound: caches on per-frame paths (PeerId parses, key encodings)
// must not grow with the number of peers a hostile network can make up.

/**
 * The value `map` holds for `key`, or `make(key)`, stored first. Past `limit` entries the
 * oldest inserted goes first (insertion order, not recency: hits cost one lookup).
 */
export function boundedMemo<K, V>(map: Map<K, V>, limit: number, key: K, make: (key: K) => V): V {
  const hit = map.get(key);
  if (hit !== undefined) return hit;
  const made = make(key);
  if (map.size >= limit) map.delete(map.keys().next().value as K);
  map.set(key, made);
  return made;
}
