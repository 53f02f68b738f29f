"""Feasibility: milestones, progression criteria with traffic lights, feasibility metrics
with exact intervals, the CONSORT flow, and the opt-in public summary.

Milestones read enrollment, partners and safety; none of them reads milestones.
"""
