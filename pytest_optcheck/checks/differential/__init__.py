"""The checks without goldens — resume, parity, distributed — each comparing a run with a
reference run of the same spec, and the support only they use: every tensor after every
step (:mod:`.states`), the interrupted run (:mod:`.checkpoint`), the implementations an
optimizer offers (:mod:`.implementations`), and the spec trained over several processes
(:mod:`.processes`)."""
