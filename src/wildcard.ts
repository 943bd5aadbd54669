/**
 * Wildcard patterns given by people (--select values, known_hosts host patterns): "*" matches any run of
 * characters, "?" any one character. Never a regular expression built from the text: matching walks both
 * strings once, going back only to the last "*" seen, so it takes at most length × length steps; a pattern
 * such as "*a*a*a*a*a*c" that made a backtracking regex run for minutes is answered at once.
 */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1; // where the last "*" was in the pattern
  let mark = 0; // and where in the text its run would end
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1; // let the last "*" take one more character
      t = ++mark;
    } else return false;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
