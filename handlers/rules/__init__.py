"""Case rules: what is true of a concern, callable without a chat (handlers, jobs, exports).

Plain functions with a keyword-only `session`; they change the store through `storage/` and never
commit (the caller's transaction does). They know no messenger, no reply and no handler.
"""
