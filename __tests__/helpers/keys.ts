/** Real host keys made with `ssh-keygen -t ed25519` (public halves only). */
export const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII2PvW8Z2GDZAsIsAZJK7OonppyqPBH4BGtvZRet8TFz';
/** The same key blob under the wrong type name: a mis-pasted key. */
export const RSA_AS_ED25519 = 'ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAII2PvW8Z2GDZAsIsAZJK7OonppyqPBH4BGtvZRet8TFz';
