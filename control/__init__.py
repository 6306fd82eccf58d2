"""Running robots: the one control loop, the policies it runs, and what builds, records and shows them.

Sits above planners, robot_drivers, envs and worldmodel; the commands in apps/ are thin entry points over it.

    from vjepa_planning.control.loop import run_episode, steps            # observe -> policy -> safety -> robot
    from vjepa_planning.control.loop import PlannerPolicy, RandomPolicy, make_policy, oracle_policy
    from vjepa_planning.control.build import load_world_model, make_mpc   # from the `world_model` / `planner` configs
"""
