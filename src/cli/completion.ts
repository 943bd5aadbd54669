/**
 * Shell completion scripts for bash, zsh and fish, generated from the command table (main.ts), so a new
 * command and every new flag complete without touching this file. Each script completes the command
 * name in first place, then the command's verbs (`sandbox up`) and its long flags.
 */
export interface Completable {
  name: string;
  summary: string;
  /** Long flags without dashes. */
  flags: readonly string[];
  /** Words taken in first place after the command (`sandbox up|down|status`, `help <command>`). */
  verbs: readonly string[];
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const words = (list: readonly string[]) => list.join(' ');
const flagWords = (c: Completable) => words(c.flags.map((f) => `--${f}`));

function bash(commands: readonly Completable[]): string {
  const cases = commands.map((c) => `    ${c.name}) words="${words(c.verbs)} ${flagWords(c)}" ;;`).join('\n');
  return `# fleet-deploy completion for bash: eval "$(fleet-deploy completion bash)" in ~/.bashrc
# Completes "fleet-deploy …" and "npx fleet-deploy …" (other npx commands: file names).
_fleet_deploy() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words first=1
  if [ "\${COMP_WORDS[0]##*/}" = npx ]; then
    if [ "$COMP_CWORD" -eq 1 ]; then
      COMPREPLY=($(compgen -W "fleet-deploy" -- "$cur")); [ \${#COMPREPLY[@]} -gt 0 ] || COMPREPLY=($(compgen -f -- "$cur"))
      return
    fi
    [ "\${COMP_WORDS[1]}" = fleet-deploy ] || { COMPREPLY=($(compgen -f -- "$cur")); return; }
    first=2
  fi
  if [ "$COMP_CWORD" -eq "$first" ]; then
    COMPREPLY=($(compgen -W "${words(commands.map((c) => c.name))} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[first]}" in
${cases}
    *) words="" ;;
  esac
  case "$cur" in
    -*) COMPREPLY=($(compgen -W "$words" -- "$cur")) ;;
    *) COMPREPLY=($(compgen -W "$words" -- "$cur")); [ \${#COMPREPLY[@]} -gt 0 ] || COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _fleet_deploy fleet-deploy
complete -F _fleet_deploy npx
`;
}

const zshQuote = (t: string) => t.replace(/'/g, "'\\''").replace(/:/g, '\\:');

function zsh(commands: readonly Completable[]): string {
  const list = commands.map((c) => `    '${c.name}:${zshQuote(c.summary)}'`).join('\n');
  const cases = commands
    .map(
      (c) => `    ${c.name}) compadd -- ${words([...c.verbs, ...c.flags.map((f) => `--${f}`)])}; _files ;;`,
    )
    .join('\n');
  return `#compdef fleet-deploy
# fleet-deploy completion for zsh: eval "$(fleet-deploy completion zsh)" in ~/.zshrc (after compinit)
_fleet_deploy() {
  if [[ $words[1] == npx ]]; then
    if (( CURRENT == 2 )); then compadd fleet-deploy; _files; return; fi
    [[ $words[2] == fleet-deploy ]] || { _files; return; }
    shift words; (( CURRENT-- ))
  fi
  local -a commands
  commands=(
${list}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case "$words[2]" in
${cases}
  esac
}
compdef _fleet_deploy fleet-deploy npx
`;
}

const fishQuote = (t: string) => `'${t.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fish(commands: readonly Completable[]): string {
  const lines = [
    '# fleet-deploy completion for fish: fleet-deploy completion fish > ~/.config/fish/completions/fleet-deploy.fish',
    'complete -c fleet-deploy -f',
    ...commands.map(
      (c) => `complete -c fleet-deploy -n __fish_use_subcommand -a ${c.name} -d ${fishQuote(c.summary)}`,
    ),
  ];
  for (const c of commands) {
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    if (c.verbs.length) lines.push(`complete -c fleet-deploy ${when} -a ${fishQuote(words(c.verbs))}`);
    for (const f of c.flags) lines.push(`complete -c fleet-deploy ${when} -l ${f}`);
  }
  // npx fleet-deploy …: the same words once fleet-deploy is the word after npx
  const names = words(commands.map((c) => c.name));
  const npx = "'__fish_seen_subcommand_from fleet-deploy";
  lines.push('complete -c npx -n __fish_use_subcommand -a fleet-deploy');
  for (const c of commands) {
    lines.push(
      `complete -c npx -n ${npx}; and not __fish_seen_subcommand_from ${names}' -f -a ${c.name} -d ${fishQuote(c.summary)}`,
    );
    const when = `-n ${npx}; and __fish_seen_subcommand_from ${c.name}'`;
    if (c.verbs.length) lines.push(`complete -c npx ${when} -a ${fishQuote(words(c.verbs))}`);
    for (const f of c.flags) lines.push(`complete -c npx ${when} -l ${f}`);
  }
  return `${lines.join('\n')}\n`;
}

export function completionScript(shell: Shell, commands: readonly Completable[]): string {
  return { bash, zsh, fish }[shell](commands);
}
